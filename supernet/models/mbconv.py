"""``MBConvSupernet``: a BigNAS/AttentiveNAS-style supernet of inverted-residual blocks.

Elastic in input resolution (the data pipeline resizes), depth (first ``d`` blocks of a stage),
width, kernel (centre crop) and expand ratio. Channel counts come from
``supernet.space.mbconv.mbconv_layout`` — the same rules the complexity counter uses: the layout
of the largest child sizes every weight, the layout of a child configures the blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.models.base import Supernet, drop_path_rates
from supernet.ops import (
    ElasticConvBnAct,
    ElasticLinear,
    ElasticSequential,
    ElasticShortcut,
    ElasticSqueezeExcite,
    Residual,
    set_active,
)
from supernet.space import Arch, SearchSpace
from supernet.space.mbconv import BlockLayout, mbconv_layout


class MBConvBody(nn.Module):
    """Expand 1x1 (when the stage can expand) -> depthwise kxk -> SE (optional) -> project 1x1."""

    def __init__(self, largest: BlockLayout, se: dict | None, act: str, bn: dict):
        super().__init__()
        mid = largest.mid_ch
        self.expand = ElasticConvBnAct(largest.in_ch, mid, 1, act=act, **bn) if largest.expand_conv else None
        self.depthwise = ElasticConvBnAct(mid, mid, largest.kernel, largest.stride, depthwise=True, act=act, **bn)
        self.se = ElasticSqueezeExcite(mid, largest.se_ch, se["activation"], se["gate"]) if se else None
        self.project = ElasticConvBnAct(mid, largest.out_ch, 1, act=None, **bn)

    def configure(self, *, mid_channels: int, out_channels: int, kernel_size: int, se_channels: int) -> None:
        """``mid_channels`` is the expanded width (the input width when the block does not expand)."""
        if self.expand is not None:
            self.expand.configure(out_channels=mid_channels)
        self.depthwise.configure(kernel_size=kernel_size)
        if self.se is not None:
            self.se.configure(channels=mid_channels, reduced_channels=se_channels)
        self.project.configure(out_channels=out_channels)
        set_active(self, mid_channels=mid_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.expand is not None:
            x = self.expand(x)
        x = self.depthwise(x)
        if self.se is not None:
            x = self.se(x)
        return self.project(x)

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        layers = [self.expand.export(in_features)] if self.expand is not None else []
        layers.append(self.depthwise.export(self.mid_channels))
        if self.se is not None:
            layers.append(self.se.export(self.mid_channels))
        layers.append(self.project.export(self.mid_channels))
        return nn.Sequential(*layers)


class MBConvBlock(Residual):
    """``shortcut(x) + drop_path(body(x))``; the shortcut pools when the block strides and projects
    when the child's widths differ on both sides of the block."""

    def __init__(self, largest: BlockLayout, se: dict | None, act: str, bn: dict, drop_path: float):
        shortcut = ElasticShortcut(largest.in_ch, largest.out_ch, largest.stride)
        super().__init__(MBConvBody(largest, se, act, bn), shortcut, drop_path)

    def configure(
        self, *, mid_channels: int, out_channels: int, kernel_size: int, se_channels: int, project_shortcut: bool
    ) -> None:
        self.body.configure(
            mid_channels=mid_channels, out_channels=out_channels, kernel_size=kernel_size, se_channels=se_channels
        )
        self.shortcut.configure(project_to=out_channels if project_shortcut else None)
        set_active(self, out_features=out_channels)

    def zero_init_last(self) -> None:
        """Start as the shortcut alone: the body's last BN scales by 0 (BigNAS)."""
        nn.init.zeros_(self.body.project.bn.weight)

    @torch.no_grad()
    def export(self, in_features: int) -> Residual:
        return Residual(self.body.export(in_features), self.shortcut.export(in_features))


class MBConvSupernet(Supernet):
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
        largest = mbconv_layout(space, space.max())
        self.stem = ElasticConvBnAct(
            in_chans, largest.stem_out, s["stem_kernel"], s["stem_stride"], act=s["activation"], **bn
        )
        rates = iter(drop_path_rates(drop_path, sum(len(stage) for stage in largest.stages)))
        self.stages = nn.ModuleList(
            ElasticSequential(
                MBConvBlock(block, s["se"] if setting["se"] else None, setting["activation"], bn, next(rates))
                for block in stage
            )
            for stage, setting in zip(largest.stages, space.stage_settings)
        )
        self.final_expand = ElasticConvBnAct(largest.final_in, largest.final_out, 1, act=s["activation"], **bn)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = ElasticConvBnAct(largest.final_out, largest.head_out, 1, bn=False, act=s["activation"])
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(largest.head_out, num_classes)
        self.set_regularization(False)
        if zero_init_residual:
            for stage in self.stages:
                for block in stage:
                    block.zero_init_last()
        self.set_arch(space.max())

    def _configure(self, arch: Arch) -> None:
        layout = mbconv_layout(self.space, arch)
        set_active(self, layout=layout)
        self.stem.configure(out_channels=layout.stem_out)
        for stage, blocks in zip(self.stages, layout.stages):
            stage.configure(depth=len(blocks))
            for module, block in zip(stage, blocks):
                module.configure(
                    mid_channels=block.mid_ch,
                    out_channels=block.out_ch,
                    kernel_size=block.kernel,
                    se_channels=block.se_ch,
                    project_shortcut=block.shortcut_conv,
                )
        self.final_expand.configure(out_channels=layout.final_out)
        self.feature_mix.configure(out_channels=layout.head_out)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.final_expand(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.pool(self.forward_features(x)))
        return self.classifier(self.dropout(self.flatten(x)))

    def _assemble(self) -> nn.Module:
        lay = self.layout
        layers = [self.stem.export(self.in_chans)]
        for stage, blocks in zip(self.stages, lay.stages):
            layers += stage.export(blocks[0].in_ch)
        layers += [
            self.final_expand.export(lay.final_in),
            nn.AdaptiveAvgPool2d(1),
            self.feature_mix.export(lay.final_out),
            nn.Flatten(1),
            self.classifier.export(lay.head_out),
        ]
        return nn.Sequential(*layers)
