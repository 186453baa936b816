"""``ElasticPatchEmbed``: non-overlapping patches to tokens (conv with stride = patch), elastic width.

The weight lives in an ``ElasticConv2d`` (its ``active_weight`` is the slicing rule); the conv is
run here with no padding, since ``ElasticConv2d`` pads for 'same' output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        self.patch_size = patch_size
        self.proj = ElasticConv2d(in_chans, max_embed, patch_size, stride=patch_size, bias=True)

    @property
    def active_out(self) -> int:
        return self.proj.active_out

    @active_out.setter
    def active_out(self, value: int) -> None:
        self.proj.active_out = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.proj.active_weight(x.shape[1])
        return F.conv2d(x, weight, bias, self.patch_size).flatten(2).transpose(1, 2)

    @torch.no_grad()
    def export(self, in_chans: int) -> PatchEmbed:
        weight, bias = self.proj.active_weight(in_chans)
        conv = nn.Conv2d(in_chans, weight.shape[0], self.patch_size, self.patch_size).to(weight.device, weight.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return PatchEmbed(conv)
