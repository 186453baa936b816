"""``ResNetSupernet``: an OFA-style elastic ResNet of basic or bottleneck blocks.

Elastic in input resolution (the data pipeline resizes), stem width, and per stage: width, depth
(first ``d`` blocks) and expand ratio (inner width of each block). Geometry comes from
``supernet.space.resnet.resnet_layout`` — the same rules the complexity counter uses, including
where the 1x1 conv + BN projection shortcuts are: the layout of the largest child sizes every
weight, the layout of a child configures the blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.models.base import Supernet, drop_path_rates
from supernet.ops import ElasticConvBnAct, ElasticLinear, ElasticSequential, Residual, set_active
from supernet.space import Arch, SearchSpace
from supernet.space.resnet import ResNetBlockLayout, resnet_layout


class ResNetBody(nn.Module):
    """basic: 3x3 (stride) -> 3x3; bottleneck: 1x1 -> 3x3 (stride) -> 1x1. BN after every conv,
    ReLU after all but the last (it comes after the residual sum)."""

    def __init__(self, kind: str, largest: ResNetBlockLayout, bn: dict):
        super().__init__()
        max_in, max_mid, max_out, stride = largest.in_ch, largest.mid_ch, largest.out_ch, largest.stride
        if kind == "basic":
            convs = [
                ElasticConvBnAct(max_in, max_mid, 3, stride, **bn),
                ElasticConvBnAct(max_mid, max_out, 3, act=None, **bn),
            ]
        else:
            convs = [
                ElasticConvBnAct(max_in, max_mid, 1, **bn),
                ElasticConvBnAct(max_mid, max_mid, 3, stride, **bn),
                ElasticConvBnAct(max_mid, max_out, 1, act=None, **bn),
            ]
        self.convs = nn.ModuleList(convs)

    def configure(self, *, mid_channels: int, out_channels: int) -> None:
        for conv in self.convs[:-1]:
            conv.configure(out_channels=mid_channels)
        self.convs[-1].configure(out_channels=out_channels)
        set_active(self, mid_channels=mid_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return x

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        ins = [in_features] + [self.mid_channels] * (len(self.convs) - 1)
        return nn.Sequential(*(conv.export(c) for conv, c in zip(self.convs, ins)))


class ResNetBlock(nn.Module):
    """``relu(shortcut(x) + drop_path(body(x)))``; the shortcut is a 1x1 conv + BN (where the space's
    layout puts one, for every child) or the identity."""

    def __init__(self, kind: str, largest: ResNetBlockLayout, drop_path: float, bn: dict):
        super().__init__()
        self.projection = largest.projection
        shortcut = (
            ElasticConvBnAct(largest.in_ch, largest.out_ch, 1, largest.stride, act=None, **bn)
            if self.projection
            else nn.Identity()
        )
        self.residual = Residual(ResNetBody(kind, largest, bn), shortcut, drop_path)
        self.act = nn.ReLU()

    def configure(self, *, mid_channels: int, out_channels: int) -> None:
        self.residual.body.configure(mid_channels=mid_channels, out_channels=out_channels)
        if self.projection:
            self.residual.shortcut.configure(out_channels=out_channels)
        set_active(self, out_features=out_channels)

    def zero_init_last(self) -> None:
        """Start as the shortcut alone: the body's last BN scales by 0 (Goyal et al.)."""
        nn.init.zeros_(self.residual.body.convs[-1].bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x))

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        shortcut = self.residual.shortcut.export(in_features) if self.projection else nn.Identity()
        return nn.Sequential(Residual(self.residual.body.export(in_features), shortcut), nn.ReLU())


class ResNetSupernet(Supernet):
    def __init__(
        self,
        space: SearchSpace,
        num_classes: int,
        in_chans: int = 3,
        *,
        dropout: float = 0.2,
        drop_path: float = 0.2,
        bn_eps: float = 1e-5,
        bn_momentum: float | None = 0.1,
        zero_init_residual: bool = True,
    ):
        super().__init__(space, num_classes, in_chans)
        s = space.settings
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        largest = resnet_layout(space, space.max())
        self.stem = ElasticConvBnAct(in_chans, largest.stem_out, s["stem_kernel"], s["stem_stride"], **bn)
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if s["stem_pool"] else nn.Identity()
        rates = iter(drop_path_rates(drop_path, sum(len(stage) for stage in largest.stages)))
        self.stages = nn.ModuleList(
            ElasticSequential(ResNetBlock(s["block"], block, next(rates), bn) for block in stage)
            for stage in largest.stages
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(largest.final_ch, num_classes)
        self.set_regularization(False)
        if zero_init_residual:
            for stage in self.stages:
                for block in stage:
                    block.zero_init_last()
        self.set_arch(space.max())

    def _configure(self, arch: Arch) -> None:
        layout = resnet_layout(self.space, arch)
        set_active(self, layout=layout)
        self.stem.configure(out_channels=layout.stem_out)
        for stage, blocks in zip(self.stages, layout.stages):
            stage.configure(depth=len(blocks))
            for module, block in zip(stage, blocks):
                module.configure(mid_channels=block.mid_ch, out_channels=block.out_ch)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.flatten(self.pool(self.forward_features(x)))))

    def _assemble(self) -> nn.Module:
        lay = self.layout
        layers = [self.stem.export(self.in_chans)]
        if lay.stem_pool:
            layers.append(nn.MaxPool2d(3, 2, 1))
        layers += [stage.export(blocks[0].in_ch) for stage, blocks in zip(self.stages, lay.stages)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), self.classifier.export(lay.final_ch)]
        return nn.Sequential(*layers)
