"""Few-shot supernets: splitting one supernet into sub-supernets along the choices whose children
disagree on how to update the shared weights (gradient matching, GM-NAS), and the collection of
sub-supernets that trains, evaluates and extracts as one supernet."""

from supernet.fewshot.collection import MemberSplit, SupernetCollection, copy_optimizer_state
from supernet.fewshot.gradient_matching import (
    Split,
    candidate_dimensions,
    choose_split,
    min_cut,
    similarity_matrix,
    split_dimension,
    split_of,
    value_gradients,
)
from supernet.fewshot.schedule import SplitSchedule

__all__ = [
    "Split",
    "choose_split",
    "candidate_dimensions",
    "min_cut",
    "similarity_matrix",
    "split_dimension",
    "split_of",
    "value_gradients",
    "SupernetCollection",
    "MemberSplit",
    "SplitSchedule",
    "copy_optimizer_state",
]
