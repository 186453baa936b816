"""Losses: label-smoothed CE (teacher / max child), soft-target KD and AlphaNet's alpha-divergence."""

from supernet.losses.alpha_divergence import AdaptiveAlphaDivergence, alpha_divergence
from supernet.losses.distill import KLDistillation, LabelSmoothingCE, kl_divergence

__all__ = ["LabelSmoothingCE", "KLDistillation", "kl_divergence", "AdaptiveAlphaDivergence", "alpha_divergence"]
