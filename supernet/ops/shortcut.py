"""``ElasticShortcut``: the skip path of a block — identity, avg-pool, 1x1 conv, or pool + conv."""

from __future__ import annotations

import torch
from torch import nn

from supernet.ops.elastic_conv import ElasticConv2d


class ElasticShortcut(nn.Module):
    """Pool when the block strides, project with a (bias-free, BN-free) 1x1 conv when widths differ.

    ``pool``/``conv`` are set per child by the model (from the family's layout), so the decision
    is made in one place for the forward pass, the export and the complexity count.
    """

    def __init__(self, max_in: int, max_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pool = nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        self.conv = ElasticConv2d(max_in, max_out, 1)
        self.use_pool, self.use_conv = stride > 1, max_in != max_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_pool:
            x = self.pool(x)
        if self.use_conv:
            x = self.conv(x)
        return x

    def export(self, in_channels: int) -> nn.Module:
        layers = []
        if self.use_pool:
            layers.append(nn.AvgPool2d(self.stride, ceil_mode=True, count_include_pad=False))
        if self.use_conv:
            layers.append(self.conv.export(in_channels))
        return nn.Sequential(*layers) if layers else nn.Identity()
