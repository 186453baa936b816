"""Training: the LightningModule (one sandwich step), callbacks, LR schedules."""

from supernet.training.module import CHECKPOINT_KEY, DivergenceError, SupernetModule, param_groups

__all__ = ["SupernetModule", "DivergenceError", "param_groups", "CHECKPOINT_KEY"]
