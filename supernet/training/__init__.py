"""Training: the plain sandwich step, the thin LightningModule over it, child validation, callbacks."""

from supernet.training.callbacks import LastCheckpoint
from supernet.training.module import SupernetModule, param_groups
from supernet.training.step import DivergenceError, GradientProbe, SandwichStep
from supernet.training.validation import ChildValidation

__all__ = [
    "SupernetModule",
    "SandwichStep",
    "GradientProbe",
    "ChildValidation",
    "LastCheckpoint",
    "DivergenceError",
    "param_groups",
]
