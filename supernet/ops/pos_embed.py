"""Class token and absolute position embedding of an elastic-resolution, elastic-width ViT.

The learnable position embedding is kept for the *largest* patch grid of the space. A child with a
smaller grid uses it resampled (timm's ``resample_abs_pos_embed``: bicubic, antialiased; the class
token's entry is kept as is), after slicing the leading ``embed_dim`` channels. The resampling is
differentiable, so every grid trains the same table. The grid is the child's setting
(``configure(grid=...)``, from its resolution), not read from the input: the exported child
stores the result of the same ``active_weight`` as its own grid-sized position embedding, so it
computes exactly what the supernet computes, with no interpolation at inference.
"""

from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from torch import nn

from supernet.ops.protocol import set_active
from supernet.ops.slicing import TensorWindows


class PosEmbed(nn.Module):
    """Plain: prepend the class token, add the position embedding (what a child exports to)."""

    def __init__(self, cls_token: torch.Tensor, pos_embed: torch.Tensor):
        super().__init__()
        self.cls_token = nn.Parameter(cls_token)
        self.pos_embed = nn.Parameter(pos_embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed


class ClassTokenPool(nn.Module):
    """The class token's features: ``(B, N, D) -> (B, D)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class ElasticPosEmbed(nn.Module):
    def __init__(self, max_embed: int, max_grid: int):
        super().__init__()
        self.max_grid = max_grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, max_embed))
        self.pos_embed = nn.Parameter(torch.zeros(1, max_grid**2 + 1, max_embed))
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        self.windows = TensorWindows()
        self.configure()

    def configure(self, *, grid: int | None = None) -> None:
        """Embed the tokens of a ``grid`` x ``grid`` patch grid."""
        grid = self.max_grid if grid is None else grid
        if not 0 < grid <= self.max_grid:
            raise ValueError(f"grid must be in 1..{self.max_grid}, got {grid}")
        set_active(self, grid=grid)

    def active_weight(self, in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Class token and position embedding for ``in_features`` channels on the active grid."""
        cls, pos = self.windows(
            self,
            ("cls_token", ((0, 1), (0, 1), (0, in_features))),
            ("pos_embed", ((0, 1), (0, self.max_grid**2 + 1), (0, in_features))),
        )
        if self.grid != self.max_grid:
            pos = resample_abs_pos_embed(
                pos, [self.grid, self.grid], [self.max_grid, self.max_grid], num_prefix_tokens=1
            )
        return cls, pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.grid**2:
            raise ValueError(
                f"{x.shape[1]} patch tokens in, but the active child has a {self.grid}x{self.grid} "
                f"patch grid: resize the input to the child's resolution"
            )
        cls, pos = self.active_weight(x.shape[-1])
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1) + pos

    @torch.no_grad()
    def export(self, in_features: int) -> PosEmbed:
        cls, pos = self.active_weight(in_features)
        return PosEmbed(cls.clone(), pos.clone())
