"""``ResNetSupernet``: an OFA-style elastic ResNet of basic or bottleneck blocks.

Elastic in input resolution (the data pipeline resizes), stem width, and per stage: width, depth
(first ``d`` blocks) and expand ratio (inner width of each block). Geometry of each child comes
from ``supernet.space.resnet.resnet_layout`` — the same rules the complexity counter uses,
including where the 1x1 conv + BN projection shortcuts are.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.models.base import Supernet
from supernet.ops import ElasticConvBnAct, ElasticLinear, Residual
from supernet.ops.elastic_depth import ElasticSequential
from supernet.space import Arch, SearchSpace
from supernet.space.resnet import ResNetBlockLayout, inner_channels, resnet_layout


class ResNetBody(nn.Module):
    """basic: 3x3 (stride) -> 3x3; bottleneck: 1x1 -> 3x3 (stride) -> 1x1. BN after every conv,
    ReLU after all but the last (it comes after the residual sum)."""

    def __init__(self, kind: str, max_in: int, max_mid: int, max_out: int, stride: int, bn: dict):
        super().__init__()
        if kind == "basic":
            convs = [ElasticConvBnAct(max_in, max_mid, 3, stride, **bn),
                     ElasticConvBnAct(max_mid, max_out, 3, act=None, **bn)]
        else:
            convs = [ElasticConvBnAct(max_in, max_mid, 1, **bn),
                     ElasticConvBnAct(max_mid, max_mid, 3, stride, **bn),
                     ElasticConvBnAct(max_mid, max_out, 1, act=None, **bn)]
        self.convs = nn.ModuleList(convs)

    def configure(self, block: ResNetBlockLayout) -> None:
        for conv in self.convs[:-1]:
            conv.conv.active_out = block.mid_ch
        self.convs[-1].conv.active_out = block.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return x

    def export(self, block: ResNetBlockLayout) -> nn.Sequential:
        ins = [block.in_ch] + [block.mid_ch] * (len(self.convs) - 1)
        return nn.Sequential(*(conv.export(c) for conv, c in zip(self.convs, ins)))


class ResNetBlock(nn.Module):
    """``relu(shortcut(x) + drop_path(body(x)))``; the shortcut is a 1x1 conv + BN or the identity."""

    def __init__(self, kind: str, max_in: int, max_mid: int, max_out: int, stride: int, projection: bool,
                 drop_path: float, bn: dict):
        super().__init__()
        shortcut = ElasticConvBnAct(max_in, max_out, 1, stride, act=None, **bn) if projection else nn.Identity()
        self.residual = Residual(ResNetBody(kind, max_in, max_mid, max_out, stride, bn), shortcut, drop_path)
        self.act = nn.ReLU()

    def configure(self, block: ResNetBlockLayout) -> None:
        self.residual.body.configure(block)
        if block.projection:
            self.residual.shortcut.conv.active_out = block.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x))

    def export(self, block: ResNetBlockLayout) -> nn.Sequential:
        shortcut = self.residual.shortcut.export(block.in_ch) if block.projection else nn.Identity()
        return nn.Sequential(Residual(self.residual.body.export(block), shortcut), nn.ReLU())


class ResNetSupernet(Supernet):
    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int = 3, *, dropout: float = 0.2,
                 drop_path: float = 0.2, bn_eps: float = 1e-5, bn_momentum: float | None = 0.1,
                 zero_init_residual: bool = True):
        super().__init__(space, num_classes, in_chans)
        s = space.settings
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        in_ch = max(space.global_choices["stem"])
        self.stem = ElasticConvBnAct(in_chans, in_ch, s["stem_kernel"], s["stem_stride"], **bn)
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if s["stem_pool"] else nn.Identity()
        total_blocks = sum(max(c["depth"]) for c in space.stage_choices)
        stages, index = [], 0
        for choices, setting in zip(space.stage_choices, space.stage_settings):
            out_ch = max(choices["width"])
            max_mid = inner_channels(out_ch, max(choices["expand"]), s["channel_divisor"])
            blocks = []
            for j in range(max(choices["depth"])):
                first = j == 0
                # Drop-path rate grows linearly with the block index (as in the MBConv supernet).
                blocks.append(ResNetBlock(
                    s["block"], in_ch, max_mid, out_ch, setting["stride"] if first else 1,
                    setting["projection"] and first, drop_path * index / total_blocks, bn,
                ))
                in_ch, index = out_ch, index + 1
            stages.append(ElasticSequential(blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(in_ch, num_classes)
        self.set_regularization(False)
        if zero_init_residual:
            # Goyal et al.: the last BN of every residual body starts at gamma = 0 (block = its shortcut).
            for stage in self.stages:
                for block in stage:
                    nn.init.zeros_(block.residual.body.convs[-1].bn.weight)
        self.set_arch(space.max())

    def _configure(self, arch: Arch) -> None:
        self.layout = layout = resnet_layout(self.space, arch)
        self.stem.conv.active_out = layout.stem_out
        for stage, blocks in zip(self.stages, layout.stages):
            stage.active_depth = len(blocks)
            for module, block in zip(stage, blocks):
                module.configure(block)

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
        layers += [stage.export(blocks) for stage, blocks in zip(self.stages, lay.stages)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), self.classifier.export(lay.final_ch)]
        return nn.Sequential(*layers)
