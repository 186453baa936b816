"""The ``resnet`` family: OFA-style elastic ResNets (basic or bottleneck blocks), and child geometry.

YAML layout (see ``conf/space/resnet_cifar.yaml``)::

    family: resnet
    block: basic                 # basic (3x3, 3x3) | bottleneck (1x1, 3x3, 1x1)
    resolutions: [24, 28, 32]
    stem: {width: [12, 16], kernel: 3, stride: 1, pool: false}   # pool: 3x3/2 max-pool (ImageNet)
    channel_divisor: 4           # inner widths are rounded to a multiple of this (make_divisible)
    stages:                      # width/depth/expand are choices; stride is fixed
      - {width: [8, 12, 16], depth: [1, 2, 3], expand: [0.5, 0.75, 1.0], stride: 1}

Per block, the inner width is ``make_divisible(round(width * expand), channel_divisor)``: the
width of the first 3x3 conv of a basic block, of the 1x1 and 3x3 convs of a bottleneck (ResNet-50
has expand 0.25). The stride sits on the first conv of a basic block and on the 3x3 of a
bottleneck (ResNet v1.5), in the first block of a stage.

Shortcuts: the first block of a stage has a 1x1 conv (with the block's stride) + BN shortcut
unless every child has the same single width on both sides of it at stride 1; every other block
has an identity shortcut. The choice is made per position for the whole space (as OFA-ResNet
does), not per child, so every child has the same kind of skip at the same place and the shared
projection is trained by all of them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supernet.space.arch import Arch
from supernet.space.errors import SpaceError
from supernet.space.family import ParsedSpace, register_family
from supernet.space.geometry import conv_bn_cost, conv_out_size, expanded_channels, total_cost
from supernet.space.space import SearchSpace, as_choices, as_choices_map, check_keys

STAGE_CHOICE_FIELDS = ("width", "depth", "expand")
BLOCK_TYPES = ("basic", "bottleneck")
_TOP_KEYS = ("name", "family", "description", "block", "resolutions", "stem", "channel_divisor", "stages")


def _int_choices(choices: tuple, where: str) -> None:
    for v in choices:
        if not isinstance(v, int):
            raise SpaceError(f"{where}: choices must be integers, got {v}")


def parse_resnet(decl: Mapping[str, Any]) -> ParsedSpace:
    name = decl["name"]
    where = f"space {name!r}"
    check_keys(decl, _TOP_KEYS, where)
    for key in ("resolutions", "stem", "stages"):
        if key not in decl:
            raise SpaceError(f"{where}: missing section {key!r}")
    block = decl.get("block", "basic")
    if block not in BLOCK_TYPES:
        raise SpaceError(f"{where}.block: must be one of {list(BLOCK_TYPES)}, got {block!r}")
    stem, stages = decl["stem"], decl["stages"]
    if not isinstance(stem, Mapping):
        raise SpaceError(f"{where}: 'stem' must be a mapping")
    check_keys(stem, ("width", "kernel", "stride", "pool"), f"{where} stem")
    if not isinstance(stages, list) or not stages:
        raise SpaceError(f"{where}: 'stages' must be a non-empty list")
    divisor = decl.get("channel_divisor", 8)
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor <= 0:
        raise SpaceError(f"{where}.channel_divisor: must be a positive integer, got {divisor!r}")
    global_choices = {
        "resolution": as_choices(decl["resolutions"], f"{where} resolutions"),
        "stem": as_choices(stem.get("width"), f"{where} stem.width"),
    }
    _int_choices(global_choices["resolution"], f"{where} resolutions")
    _int_choices(global_choices["stem"], f"{where} stem.width")
    stem_kernel = stem.get("kernel", 3)
    if not isinstance(stem_kernel, int) or stem_kernel % 2 == 0:
        raise SpaceError(f"{where} stem.kernel: must be an odd integer, got {stem_kernel!r}")
    stem_stride = stem.get("stride", 1)
    if stem_stride not in (1, 2):
        raise SpaceError(f"{where} stem.stride: must be 1 or 2, got {stem_stride!r}")
    stage_choices, stage_settings = [], []
    in_choices = global_choices["stem"]
    for i, stage in enumerate(stages):
        swhere = f"{where} stages[{i}]"
        if not isinstance(stage, Mapping):
            raise SpaceError(f"{swhere}: must be a mapping")
        check_keys(stage, (*STAGE_CHOICE_FIELDS, "stride"), swhere)
        choices = as_choices_map(stage, STAGE_CHOICE_FIELDS, swhere)
        _int_choices(choices["width"], f"{swhere}.width")
        _int_choices(choices["depth"], f"{swhere}.depth")
        stride = stage.get("stride", 1)
        if stride not in (1, 2):
            raise SpaceError(f"{swhere}.stride: must be 1 or 2, got {stride!r}")
        projection = stride != 1 or len(set(in_choices) | set(choices["width"])) > 1
        stage_choices.append(choices)
        stage_settings.append({"stride": stride, "projection": projection})
        in_choices = choices["width"]
    settings = {
        "block": block,
        "stem_kernel": stem_kernel,
        "stem_stride": stem_stride,
        "stem_pool": bool(stem.get("pool", False)),
        "channel_divisor": divisor,
    }
    return ParsedSpace(global_choices, stage_choices, stage_settings, settings)


@dataclass(frozen=True)
class ResNetBlockLayout:
    """One active residual block of a child."""

    in_ch: int
    mid_ch: int
    out_ch: int
    stride: int
    projection: bool  # 1x1 conv + BN shortcut (else identity)
    in_size: int
    out_size: int


@dataclass(frozen=True)
class ResNetLayout:
    resolution: int
    block: str
    stem_out: int
    stem_kernel: int
    stem_stride: int
    stem_size: int  # output size of the stem conv
    stem_pool: bool
    stages: tuple[tuple[ResNetBlockLayout, ...], ...]
    final_ch: int
    final_size: int


# cached: a training step lays out every child it activates, and complexity counts lay out
# every child a search scores (the layout is a pure function of the space and the arch)
@functools.lru_cache(maxsize=4096)
def resnet_layout(space: SearchSpace, arch: Arch) -> ResNetLayout:
    """Exact geometry of ``arch`` (assumed valid for ``space``)."""
    s = space.settings
    stem_size = conv_out_size(arch.resolution, s["stem_kernel"], s["stem_stride"])
    size = conv_out_size(stem_size, 3, 2) if s["stem_pool"] else stem_size
    in_ch = int(arch["stem"])
    stages = []
    for choice, setting in zip(arch.stages, space.stage_settings):
        blocks = []
        out_ch = int(choice["width"])
        mid = expanded_channels(out_ch, choice["expand"], s["channel_divisor"])
        for j in range(int(choice["depth"])):
            stride = setting["stride"] if j == 0 else 1
            out_size = conv_out_size(size, 3, stride)
            blocks.append(
                ResNetBlockLayout(in_ch, mid, out_ch, stride, setting["projection"] and j == 0, size, out_size)
            )
            in_ch, size = out_ch, out_size
        stages.append(tuple(blocks))
    return ResNetLayout(
        resolution=arch.resolution,
        block=s["block"],
        stem_out=int(arch["stem"]),
        stem_kernel=s["stem_kernel"],
        stem_stride=s["stem_stride"],
        stem_size=stem_size,
        stem_pool=s["stem_pool"],
        stages=tuple(stages),
        final_ch=in_ch,
        final_size=size,
    )


def count_resnet(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> tuple[int, int]:
    """Multiply-adds and parameters of ``arch`` (conventions: ``supernet.metrics.complexity``)."""
    lay = resnet_layout(space, arch)
    parts = [conv_bn_cost(lay.stem_size**2, in_chans, lay.stem_out, lay.stem_kernel**2)]
    for block in (b for stage in lay.stages for b in stage):
        hw_in, hw_out, mid = block.in_size**2, block.out_size**2, block.mid_ch
        if lay.block == "basic":
            convs = [(hw_out, block.in_ch, mid, 9), (hw_out, mid, block.out_ch, 9)]
        else:
            convs = [(hw_in, block.in_ch, mid, 1), (hw_out, mid, mid, 9), (hw_out, mid, block.out_ch, 1)]
        if block.projection:
            convs.append((hw_out, block.in_ch, block.out_ch, 1))
        parts += [conv_bn_cost(*conv) for conv in convs]  # every conv is followed by a BN
    parts.append((lay.final_ch * num_classes, lay.final_ch * num_classes + num_classes))
    return total_cost(parts)


register_family("resnet", parser=parse_resnet, counter=count_resnet, model="supernet.models.resnet:ResNetSupernet")
