"""``ElasticSequential``: a stack of blocks of which the first ``active_depth`` run (elastic depth)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn


class ElasticSequential(nn.ModuleList):
    def __init__(self, blocks: Iterable[nn.Module]):
        super().__init__(blocks)
        self.active_depth = len(self)

    def active_blocks(self) -> list[nn.Module]:
        return list(self)[: self.active_depth]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.active_blocks():
            x = block(x)
        return x

    @torch.no_grad()
    def export(self, settings: Sequence[Any]) -> nn.Sequential:
        """The active blocks, exported: ``block.export(setting)``, one setting per active block."""
        blocks = self.active_blocks()
        if len(settings) != len(blocks):
            raise ValueError(f"{len(settings)} block settings given for {len(blocks)} active blocks")
        return nn.Sequential(*(block.export(setting) for block, setting in zip(blocks, settings)))

    def extra_repr(self) -> str:
        return f"active_depth={self.active_depth}"
