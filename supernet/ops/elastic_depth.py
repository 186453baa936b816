"""``ElasticSequential``: the elastic-depth container of every family (a stage of blocks, or a
ViT's layers), of which the first ``depth`` blocks run."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from supernet.ops.protocol import ElasticBlock, set_active


class ElasticSequential(nn.ModuleList):
    def __init__(self, blocks: Iterable[ElasticBlock]):
        super().__init__(blocks)
        self.configure()

    def configure(self, *, depth: int | None = None) -> None:
        """Run the first ``depth`` blocks (each configured through its own ``configure``)."""
        depth = len(self) if depth is None else depth
        if not 0 < depth <= len(self):
            raise ValueError(f"depth must be in 1..{len(self)}, got {depth}")
        set_active(self, depth=depth)

    def active_blocks(self) -> list[ElasticBlock]:
        return list(self)[: self.depth]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.active_blocks():
            x = block(x)
        return x

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        """The active blocks, exported: each block gets the width the one before it produces."""
        exported = []
        for block in self.active_blocks():
            exported.append(block.export(in_features))
            in_features = block.out_features
        return nn.Sequential(*exported)

    def extra_repr(self) -> str:
        return f"depth={self.depth}"
