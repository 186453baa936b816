"""Few-shot supernets: splitting one supernet into sub-supernets along the choices whose children
disagree on how to update the shared weights (gradient matching, GM-NAS)."""

from supernet.fewshot.gradient_matching import (
    Split,
    choose_split,
    min_cut,
    similarity_matrix,
    split_dimension,
    split_of,
    value_gradients,
)

__all__ = ["Split", "choose_split", "min_cut", "similarity_matrix", "split_dimension", "split_of", "value_gradients"]
