"""``ElasticSqueezeExcite``: squeeze-excite whose widths follow the input channel count."""

from __future__ import annotations

import torch
from timm.layers import SqueezeExcite, get_act_layer, make_divisible
from torch import nn

from supernet.ops.elastic_conv import ElasticConv2d


class ElasticSqueezeExcite(nn.Module):
    """SE block; for ``c`` input channels the reduced width is ``make_divisible(c // reduction, divisor)``."""

    def __init__(self, max_channels: int, reduction: int = 4, divisor: int = 8,
                 act_layer: str = "relu", gate_layer: str = "hard_sigmoid"):
        super().__init__()
        self.reduction, self.divisor = reduction, divisor
        self.act_name, self.gate_name = act_layer, gate_layer
        max_rd = self.reduced(max_channels)
        self.reduce = ElasticConv2d(max_channels, max_rd, 1, bias=True)
        self.expand = ElasticConv2d(max_rd, max_channels, 1, bias=True)
        self.act = get_act_layer(act_layer)()
        self.gate = get_act_layer(gate_layer)()

    def reduced(self, channels: int) -> int:
        return make_divisible(channels // self.reduction, self.divisor)

    def _configure(self, channels: int) -> None:
        self.reduce.active_out = self.reduced(channels)
        self.expand.active_out = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._configure(x.shape[1])
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))

    @torch.no_grad()
    def export(self, channels: int) -> SqueezeExcite:
        self._configure(channels)
        rd = self.reduced(channels)
        se = SqueezeExcite(channels, rd_channels=rd, act_layer=get_act_layer(self.act_name),
                           gate_layer=get_act_layer(self.gate_name))
        se.fc1 = self.reduce.export(channels)
        se.fc2 = self.expand.export(rd)
        return se
