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
        return self.shortcut(x) + self.drop_path(self.body(x))
