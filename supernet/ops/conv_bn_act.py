"""``ElasticConvBnAct``: elastic conv, optional elastic BN, optional activation — exported as a Sequential."""

from __future__ import annotations

import torch
from timm.layers import get_act_layer
from torch import nn

from supernet.ops.elastic_batchnorm import ElasticBatchNorm2d
from supernet.ops.elastic_conv import ElasticConv2d


class ElasticConvBnAct(nn.Module):
    def __init__(
        self,
        max_in: int,
        max_out: int,
        kernel: int = 1,
        stride: int = 1,
        *,
        depthwise: bool = False,
        bn: bool = True,
        act: str | None = "relu",
        bn_eps: float = 1e-5,
        bn_momentum: float | None = 0.1,
    ):
        super().__init__()
        self.conv = ElasticConv2d(max_in, max_out, kernel, stride, depthwise=depthwise)
        self.bn = ElasticBatchNorm2d(max_out, bn_eps, bn_momentum) if bn else None
        self.act_name = act
        self.act = get_act_layer(act)() if act else nn.Identity()

    def configure(self, *, out_channels: int | None = None, kernel_size: int | None = None) -> None:
        """The conv's setting (see ``ElasticConv2d.configure``); the BN follows the conv's outputs."""
        self.conv.configure(out_channels=out_channels, kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        conv = self.conv.export(in_features)
        layers = [conv]
        if self.bn is not None:
            layers.append(self.bn.export(conv.out_channels))
        if self.act_name:
            layers.append(get_act_layer(self.act_name)())
        return nn.Sequential(*layers)
