"""``MBConvSupernet``: a BigNAS/AttentiveNAS-style supernet of inverted-residual blocks.

Elastic in input resolution (the data pipeline resizes), depth (first ``d`` blocks of a stage),
width, kernel (centre crop) and expand ratio. Channel counts of each child come from
``supernet.space.mbconv.mbconv_layout`` — the same rules the complexity counter uses.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.models.base import Supernet
from supernet.ops import ElasticConvBnAct, ElasticLinear, ElasticShortcut, ElasticSqueezeExcite, Residual
from supernet.space import Arch, SearchSpace
from supernet.space.mbconv import BlockLayout, mbconv_layout, mid_channels


class MBConvBody(nn.Module):
    """Expand 1x1 (when the stage can expand) -> depthwise kxk -> SE (optional) -> project 1x1."""

    def __init__(self, max_in: int, max_out: int, max_expand: float, max_kernel: int, stride: int,
                 se: dict | None, act: str, bn_eps: float, bn_momentum: float | None):
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        max_mid = mid_channels(max_in, max_expand) if max_expand > 1 else max_in
        self.expand = ElasticConvBnAct(max_in, max_mid, 1, act=act, **bn) if max_expand > 1 else None
        self.depthwise = ElasticConvBnAct(max_mid, max_mid, max_kernel, stride, depthwise=True, act=act, **bn)
        self.se = (
            ElasticSqueezeExcite(max_mid, se["reduction"], se["divisor"], se["activation"], se["gate"]) if se else None
        )
        self.project = ElasticConvBnAct(max_mid, max_out, 1, act=None, **bn)

    def configure(self, block: BlockLayout) -> None:
        if self.expand is not None:
            self.expand.conv.active_out = block.mid_ch
        self.depthwise.conv.active_kernel = block.kernel
        self.project.conv.active_out = block.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.expand is not None:
            x = self.expand(x)
        x = self.depthwise(x)
        if self.se is not None:
            x = self.se(x)
        return self.project(x)

    def export(self, block: BlockLayout) -> nn.Sequential:
        layers = [self.expand.export(block.in_ch)] if self.expand is not None else []
        layers.append(self.depthwise.export(block.mid_ch))
        if self.se is not None:
            layers.append(self.se.export(block.mid_ch))
        layers.append(self.project.export(block.mid_ch))
        return nn.Sequential(*layers)


class MBConvSupernet(Supernet):
    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int = 3, *, dropout: float = 0.2,
                 drop_path: float = 0.2, bn_eps: float = 1e-5, bn_momentum: float | None = 0.1,
                 zero_init_residual: bool = True):
        super().__init__(space, num_classes, in_chans)
        s = space.settings
        g = space.global_choices
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.stem = ElasticConvBnAct(in_chans, max(g["stem"]), s["stem_kernel"], s["stem_stride"],
                                     act=s["activation"], **bn)
        total_blocks = sum(max(c["depth"]) for c in space.stage_choices)
        stages, in_ch, index = [], max(g["stem"]), 0
        for choices, setting in zip(space.stage_choices, space.stage_settings):
            blocks = []
            for j in range(max(choices["depth"])):
                stride = setting["stride"] if j == 0 else 1
                out_ch = max(choices["width"])
                body = MBConvBody(in_ch, out_ch, max(choices["expand"]), max(choices["kernel"]), stride,
                                  s["se"] if setting["se"] else None, setting["activation"], **bn)
                # Drop-path rate grows linearly with the block index (EfficientNet / BigNAS).
                blocks.append(Residual(body, ElasticShortcut(in_ch, out_ch, stride), drop_path * index / total_blocks))
                in_ch, index = out_ch, index + 1
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        last_max = max(space.stage_choices[-1]["width"])
        final_max = int(round(last_max * s["head_expand"]))
        self.final_expand = ElasticConvBnAct(last_max, final_max, 1, act=s["activation"], **bn)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = ElasticConvBnAct(final_max, max(g["head"]), 1, bn=False, act=s["activation"])
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(max(g["head"]), num_classes)
        self.depths = [max(c["depth"]) for c in space.stage_choices]
        self.set_regularization(False)
        if zero_init_residual:
            # BigNAS: the last BN of every residual block starts at gamma = 0 (block = its shortcut).
            for stage in self.stages:
                for block in stage:
                    nn.init.zeros_(block.body.project.bn.weight)
        self.set_arch(space.max())

    def _configure(self, arch: Arch) -> None:
        self.layout = layout = mbconv_layout(self.space, arch)
        self.stem.conv.active_out = layout.stem_out
        for i, (stage, blocks) in enumerate(zip(self.stages, layout.stages)):
            self.depths[i] = len(blocks)
            for module, block in zip(stage, blocks):
                module.body.configure(block)
                module.shortcut.conv.active_out = block.out_ch
                module.shortcut.use_pool, module.shortcut.use_conv = block.shortcut_pool, block.shortcut_conv
        self.final_expand.conv.active_out = layout.final_out
        self.feature_mix.conv.active_out = layout.head_out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage, depth in zip(self.stages, self.depths):
            for block in stage[:depth]:
                x = block(x)
        return self.final_expand(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.pool(self.forward_features(x)))
        return self.classifier(self.dropout(self.flatten(x)))

    def _assemble(self) -> nn.Module:
        lay = self.layout
        layers = [self.stem.export(self.in_chans)]
        for stage, blocks in zip(self.stages, lay.stages):
            for module, block in zip(stage, blocks):
                layers.append(Residual(module.body.export(block), module.shortcut.export(block.in_ch)))
        layers += [
            self.final_expand.export(lay.final_in), nn.AdaptiveAvgPool2d(1),
            self.feature_mix.export(lay.final_out), nn.Flatten(1), self.classifier.export(lay.head_out),
        ]
        return nn.Sequential(*layers)
