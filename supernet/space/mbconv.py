"""The ``mbconv`` family: MobileNet/BigNAS/AttentiveNAS-style spaces, and the geometry of a child.

YAML layout (see ``conf/space/attentivenas.yaml``)::

    family: mbconv
    activation: swish                     # default activation of every layer
    resolutions: [192, 224, 256, 288]
    stem: {width: [16, 24], kernel: 3, stride: 2}
    stages:                               # width/depth/kernel/expand are choices; stride/se fixed
      - {width: [16, 24], depth: [1, 2], kernel: [3, 5], expand: [1], stride: 1, se: false}
    head: {expand: 6, width: [1792, 1984]}   # 1x1 conv to expand*last width, pool, 1x1 conv to width
    se: {reduction: 4, divisor: 8, gate: hard_sigmoid, activation: relu}

``mbconv_layout`` turns (space, arch) into the exact channel counts and spatial sizes of every
active layer. The model (sized by the largest child's layout, configured by each child's) and the
complexity counter both read it, so the rules (``make_divisible`` of the expanded width, when a
shortcut needs a conv) live once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from timm.layers import create_act, get_act_layer, make_divisible

from supernet.space.arch import Arch
from supernet.space.errors import SpaceError
from supernet.space.family import ParsedSpace, register_family
from supernet.space.geometry import conv_bn_cost, conv_out_size, expanded_channels, total_cost
from supernet.space.space import SearchSpace, as_choices, as_choices_map, check_keys

STAGE_CHOICE_FIELDS = ("width", "depth", "kernel", "expand")
_STAGE_KEYS = (*STAGE_CHOICE_FIELDS, "stride", "se", "activation")
_TOP_KEYS = ("name", "family", "description", "activation", "resolutions", "stem", "stages", "head", "se")
_SE_DEFAULTS = {"reduction": 4, "divisor": 8, "gate": "hard_sigmoid", "activation": "relu"}
CHANNEL_DIVISOR = 8  # expanded widths are rounded to a multiple of this


def known_activations() -> list[str]:
    # timm keeps its names in a private table (no public list); an empty list if it moves
    return sorted(getattr(create_act, "_ACT_LAYER_DEFAULT", {}))


def check_activation(value: Any, where: str) -> str:
    """An activation name the model can build (timm's ``get_act_layer``), checked with the space so
    that a typo names its key rather than failing deep inside the model."""
    try:
        if isinstance(value, str) and get_act_layer(value) is not None:
            return value
    except KeyError:
        pass
    raise SpaceError(f"{where}={value!r} is not a known activation; known: {known_activations()}")


def parse_mbconv(decl: Mapping[str, Any]) -> ParsedSpace:
    name = decl["name"]
    check_keys(decl, _TOP_KEYS, f"space {name!r}")
    for key in ("resolutions", "stem", "stages", "head"):
        if key not in decl:
            raise SpaceError(f"space {name!r}: missing section {key!r}")
    stem, head, stages = decl["stem"], decl["head"], decl["stages"]
    if not isinstance(stem, Mapping) or not isinstance(head, Mapping):
        raise SpaceError(f"space {name!r}: 'stem' and 'head' must be mappings")
    if not isinstance(stages, list) or not stages:
        raise SpaceError(f"space {name!r}: 'stages' must be a non-empty list")
    check_keys(stem, ("width", "kernel", "stride"), f"space {name!r} stem")
    check_keys(head, ("width", "expand"), f"space {name!r} head")
    activation = check_activation(decl.get("activation", "relu"), f"space {name!r} activation")
    se = {**_SE_DEFAULTS, **(decl.get("se") or {})}
    check_keys(se, tuple(_SE_DEFAULTS), f"space {name!r} se")
    for key in ("activation", "gate"):
        check_activation(se[key], f"space {name!r} se.{key}")

    global_choices = {
        "resolution": as_choices(decl["resolutions"], f"space {name!r} resolutions"),
        "stem": as_choices(stem.get("width"), f"space {name!r} stem.width"),
        "head": as_choices(head.get("width"), f"space {name!r} head.width"),
    }
    stage_choices, stage_settings = [], []
    for i, stage in enumerate(stages):
        where = f"space {name!r} stages[{i}]"
        if not isinstance(stage, Mapping):
            raise SpaceError(f"{where}: must be a mapping")
        check_keys(stage, _STAGE_KEYS, where)
        choices = as_choices_map(stage, STAGE_CHOICE_FIELDS, where)
        for k in choices["kernel"]:
            if not isinstance(k, int) or k % 2 == 0:
                raise SpaceError(f"{where}.kernel: kernel sizes must be odd integers, got {k}")
        stride = stage.get("stride", 1)
        if stride not in (1, 2):
            raise SpaceError(f"{where}.stride: must be 1 or 2, got {stride!r}")
        stage_choices.append(choices)
        stage_settings.append(
            {
                "stride": stride,
                "se": bool(stage.get("se", False)),
                "activation": check_activation(stage.get("activation", activation), f"{where}.activation"),
            }
        )
    settings = {
        "activation": activation,
        "stem_kernel": int(stem.get("kernel", 3)),
        "stem_stride": int(stem.get("stride", 1)),
        "head_expand": float(head.get("expand", 6)),
        "se": se,
    }
    return ParsedSpace(global_choices, stage_choices, stage_settings, settings)


@dataclass(frozen=True)
class BlockLayout:
    """One active inverted-residual block of a child."""

    in_ch: int
    mid_ch: int
    out_ch: int
    kernel: int
    stride: int
    se_ch: int  # squeeze-excite reduced width; 0 when the stage has no SE
    expand_conv: bool  # False when the stage's largest expand ratio is 1 (no 1x1 expansion at all)
    shortcut_pool: bool  # avg-pool on the shortcut (stride 2)
    shortcut_conv: bool  # 1x1 conv on the shortcut (channel count changes)
    in_size: int  # input height (= width) of the block
    out_size: int


@dataclass(frozen=True)
class MBConvLayout:
    resolution: int
    stem_out: int
    stem_kernel: int
    stem_stride: int
    stem_size: int  # output size of the stem
    stages: tuple[tuple[BlockLayout, ...], ...]
    final_in: int
    final_out: int
    final_size: int
    head_out: int


# cached: a training step lays out every child it activates, and complexity counts lay out
# every child a search scores (the layout is a pure function of the space and the arch)
@functools.lru_cache(maxsize=4096)
def mbconv_layout(space: SearchSpace, arch: Arch) -> MBConvLayout:
    """Exact geometry of ``arch`` (assumed valid for ``space``)."""
    s = space.settings
    size = conv_out_size(arch.resolution, s["stem_kernel"], s["stem_stride"])
    stem_size = size
    in_ch = int(arch["stem"])
    se_cfg = s["se"]
    stages = []
    for choice, setting, options in zip(arch.stages, space.stage_settings, space.stage_choices):
        blocks = []
        expand_conv = max(options["expand"]) > 1
        for j in range(int(choice["depth"])):
            stride = setting["stride"] if j == 0 else 1
            out_ch = int(choice["width"])
            mid = expanded_channels(in_ch, choice["expand"], CHANNEL_DIVISOR) if expand_conv else in_ch
            se_ch = make_divisible(mid // se_cfg["reduction"], se_cfg["divisor"]) if setting["se"] else 0
            out_size = conv_out_size(size, int(choice["kernel"]), stride)
            blocks.append(
                BlockLayout(
                    in_ch,
                    mid,
                    out_ch,
                    int(choice["kernel"]),
                    stride,
                    se_ch,
                    expand_conv,
                    shortcut_pool=stride > 1,
                    shortcut_conv=in_ch != out_ch,
                    in_size=size,
                    out_size=out_size,
                )
            )
            in_ch, size = out_ch, out_size
        stages.append(tuple(blocks))
    final_out = int(round(in_ch * s["head_expand"]))
    return MBConvLayout(
        resolution=arch.resolution,
        stem_out=int(arch["stem"]),
        stem_kernel=s["stem_kernel"],
        stem_stride=s["stem_stride"],
        stem_size=stem_size,
        stages=tuple(stages),
        final_in=in_ch,
        final_out=final_out,
        final_size=size,
        head_out=int(arch["head"]),
    )


def count_mbconv(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> tuple[int, int]:
    """Multiply-adds and parameters of ``arch`` (conventions: ``supernet.metrics.complexity``)."""
    lay = mbconv_layout(space, arch)
    parts = [conv_bn_cost(lay.stem_size**2, in_chans, lay.stem_out, lay.stem_kernel**2)]
    for block in (b for stage in lay.stages for b in stage):
        hw_in, hw_out, mid = block.in_size**2, block.out_size**2, block.mid_ch
        if block.expand_conv:
            parts.append(conv_bn_cost(hw_in, block.in_ch, mid, 1))
        parts.append(conv_bn_cost(hw_out, 1, mid, block.kernel**2))  # depthwise: one input per channel
        if block.se_ch:  # squeeze and excite: two 1x1 convs with biases on the pooled vector
            parts.append((2 * mid * block.se_ch, 2 * mid * block.se_ch + mid + block.se_ch))
        parts.append(conv_bn_cost(hw_out, mid, block.out_ch, 1))
        if block.shortcut_conv:  # a bare 1x1 projection
            parts.append((hw_out * block.in_ch * block.out_ch, block.in_ch * block.out_ch))
    parts.append(conv_bn_cost(lay.final_size**2, lay.final_in, lay.final_out, 1))
    head = lay.final_out * lay.head_out  # 1x1 conv on the pooled vector, no bias
    parts.append((head + lay.head_out * num_classes, head + lay.head_out * num_classes + num_classes))
    return total_cost(parts)


register_family("mbconv", parser=parse_mbconv, counter=count_mbconv, model="supernet.models.mbconv:MBConvSupernet")
