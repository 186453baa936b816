"""``ElasticPatchEmbed``: non-overlapping patches to tokens (an unpadded conv with stride = patch), elastic width."""

from __future__ import annotations

import torch
from torch import nn

from supernet.ops.elastic_conv import ElasticConv2d


class PatchEmbed(nn.Module):
    """Plain patch embedding: ``(B, C, H, W) -> (B, H/p * W/p, D)`` (what a child exports to)."""

    def __init__(self, proj: nn.Conv2d):
        super().__init__()
        self.proj = proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ElasticPatchEmbed(nn.Module):
    def __init__(self, in_chans: int, max_embed: int, patch_size: int):
        super().__init__()
        self.proj = ElasticConv2d(in_chans, max_embed, patch_size, stride=patch_size, bias=True, padding="valid")

    def configure(self, *, embed_dim: int | None = None) -> None:
        self.proj.configure(out_channels=embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)

    @torch.no_grad()
    def export(self, in_features: int) -> PatchEmbed:
        return PatchEmbed(self.proj.export(in_features))
