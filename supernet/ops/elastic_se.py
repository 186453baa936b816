"""``ElasticSqueezeExcite``: squeeze-excite elastic in its channels and its reduced width."""

from __future__ import annotations

import torch
from timm.layers import SqueezeExcite, get_act_layer
from torch import nn

from supernet.ops.elastic_conv import ElasticConv2d


class ElasticSqueezeExcite(nn.Module):
    """SE block: pool, 1x1 conv down to ``reduced_channels``, activation, 1x1 conv back up, gate.

    The reduced width of a child is the family's rule (the space's layout computes it), so it is
    configured rather than derived here.
    """

    def __init__(self, max_channels: int, max_reduced: int, act_layer: str = "relu", gate_layer: str = "hard_sigmoid"):
        super().__init__()
        self.act_name, self.gate_name = act_layer, gate_layer
        self.reduce = ElasticConv2d(max_channels, max_reduced, 1, bias=True)
        self.expand = ElasticConv2d(max_reduced, max_channels, 1, bias=True)
        self.act = get_act_layer(act_layer)()
        self.gate = get_act_layer(gate_layer)()

    def configure(self, *, channels: int | None = None, reduced_channels: int | None = None) -> None:
        """Gate ``channels`` input channels (the width of the inputs it will see) through
        ``reduced_channels``."""
        self.reduce.configure(out_channels=reduced_channels)
        self.expand.configure(out_channels=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))

    @torch.no_grad()
    def export(self, in_features: int) -> SqueezeExcite:
        fc1 = self.reduce.export(in_features)
        se = SqueezeExcite(
            in_features,
            rd_channels=fc1.out_channels,
            act_layer=get_act_layer(self.act_name),
            gate_layer=get_act_layer(self.gate_name),
        )
        se.fc1, se.fc2 = fc1, self.expand.export(fc1.out_channels)
        return se
