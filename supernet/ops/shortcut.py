"""``ElasticShortcut``: the skip path of a block — identity, avg-pool, 1x1 conv, or pool + conv."""

from __future__ import annotations

import torch
from torch import nn

from supernet.ops.elastic_conv import ElasticConv2d
from supernet.ops.protocol import set_active


class ElasticShortcut(nn.Module):
    """Pool when the block strides, project with a (bias-free, BN-free) 1x1 conv when configured to.

    Whether a child projects comes from the family's layout (``configure(project_to=...)``), so the
    decision is made in one place for the forward pass, the export and the complexity count.
    """

    def __init__(self, max_in: int, max_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pool = nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        self.conv = ElasticConv2d(max_in, max_out, 1)
        self.configure(project_to=max_out if max_in != max_out else None)

    def configure(self, *, project_to: int | None) -> None:
        """Project to ``project_to`` channels, or not at all (``None``)."""
        set_active(self, project=project_to is not None)
        if self.project:
            self.conv.configure(out_channels=project_to)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if self.project:
            x = self.conv(x)
        return x

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Module:
        layers = []
        if self.stride > 1:
            layers.append(nn.AvgPool2d(self.stride, ceil_mode=True, count_include_pad=False))
        if self.project:
            layers.append(self.conv.export(in_features))
        return nn.Sequential(*layers) if layers else nn.Identity()
