"""``Residual``: ``shortcut(x) + drop_path(body(x))``, used by supernet blocks and exported children."""

from __future__ import annotations

import torch
from timm.layers import DropPath
from torch import nn


class Residual(nn.Module):
    def __init__(self, body: nn.Module, shortcut: nn.Module, drop_path: float = 0.0):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        # drop-path is off for every child but the max one: skip the module call, a measurable part
        # of a small step's host time (benchmarks/host_overhead.py)
        if self.training and self.drop_path.drop_prob > 0:
            out = self.drop_path(out)
        return self.shortcut(x) + out
