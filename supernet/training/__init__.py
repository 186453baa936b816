"""Training: the LightningModule (one sandwich step), callbacks, LR schedules."""

from supernet.training.module import DivergenceError, SupernetModule, param_groups

__all__ = ["SupernetModule", "DivergenceError", "param_groups"]
