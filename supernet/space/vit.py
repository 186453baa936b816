"""The ``vit`` family: AutoFormer-style elastic vision transformers, and the geometry of a child.

YAML layout (see ``conf/space/autoformer_tiny.yaml``)::

    family: vit
    resolutions: [224]          # each a multiple of patch_size
    patch_size: 16
    head_dim: 64                # fixed: q/k/v width of a layer = heads * head_dim
    embed_dim: [192, 216, 240]  # global: one width for the whole residual stream
    depth: [12, 13, 14]         # global: the first ``depth`` layers run
    layers: {heads: [3, 4], mlp_ratio: [3.5, 4]}   # same choices for every layer, or a list
                                                    # with one mapping per layer (max depth long)
    qkv_bias: true
    norm_eps: 1.0e-6

An arch has globals ``resolution``, ``embed_dim``, ``depth`` and one stage per layer up to the
largest depth (AutoFormer chooses heads and MLP ratio per layer); stages past the active depth are
part of the arch but do not run. The string form reads ``r224c240d14/n4m4/n4m3.5/...``.

``vit_layout`` turns (space, arch) into the exact widths and token count of every active layer;
the model and the complexity counter both read it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supernet.space.arch import Arch
from supernet.space.errors import SpaceError
from supernet.space.family import ParsedSpace, register_family
from supernet.space.space import SearchSpace, as_choices, as_choices_map, check_keys

LAYER_CHOICE_FIELDS = ("heads", "mlp_ratio")
_TOP_KEYS = (
    "name",
    "family",
    "description",
    "resolutions",
    "patch_size",
    "head_dim",
    "embed_dim",
    "depth",
    "layers",
    "qkv_bias",
    "norm_eps",
)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SpaceError(f"{where}: must be a positive integer, got {value!r}")
    return value


def parse_vit(decl: Mapping[str, Any]) -> ParsedSpace:
    name = decl["name"]
    where = f"space {name!r}"
    check_keys(decl, _TOP_KEYS, where)
    for key in ("resolutions", "patch_size", "head_dim", "embed_dim", "depth", "layers"):
        if key not in decl:
            raise SpaceError(f"{where}: missing key {key!r}")
    patch = _positive_int(decl["patch_size"], f"{where}.patch_size")
    head_dim = _positive_int(decl["head_dim"], f"{where}.head_dim")
    global_choices = {
        "resolution": as_choices(decl["resolutions"], f"{where}.resolutions"),
        "embed_dim": as_choices(decl["embed_dim"], f"{where}.embed_dim"),
        "depth": as_choices(decl["depth"], f"{where}.depth"),
    }
    for field in ("resolution", "embed_dim", "depth"):
        for v in global_choices[field]:
            if not isinstance(v, int):
                raise SpaceError(f"{where}.{field}: choices must be integers, got {v}")
    for r in global_choices["resolution"]:
        # The patch grid must be exact: a remainder would be silently cropped by the patch conv.
        if r % patch:
            raise SpaceError(f"{where}.resolutions: {r} is not a multiple of patch_size {patch}")
    max_depth = max(global_choices["depth"])
    layers = decl["layers"]
    if isinstance(layers, Mapping):
        layers = [layers] * max_depth
    if not isinstance(layers, list) or len(layers) != max_depth:
        raise SpaceError(
            f"{where}.layers: give one mapping of choices for every layer, or a list of {max_depth} "
            f"mappings (one per layer up to the largest depth)"
        )
    stage_choices = []
    for i, layer in enumerate(layers):
        lwhere = f"{where} layers[{i}]"
        if not isinstance(layer, Mapping):
            raise SpaceError(f"{lwhere}: must be a mapping")
        check_keys(layer, LAYER_CHOICE_FIELDS, lwhere)
        choices = as_choices_map(layer, LAYER_CHOICE_FIELDS, lwhere)
        for h in choices["heads"]:
            if not isinstance(h, int):
                raise SpaceError(f"{lwhere}.heads: choices must be integers, got {h}")
        stage_choices.append(choices)
    norm_eps = decl.get("norm_eps", 1e-6)
    if isinstance(norm_eps, bool) or not isinstance(norm_eps, (int, float)) or norm_eps <= 0:
        raise SpaceError(f"{where}.norm_eps: must be a positive number, got {norm_eps!r}")
    settings = {
        "patch_size": patch,
        "head_dim": head_dim,
        "qkv_bias": bool(decl.get("qkv_bias", True)),
        "norm_eps": float(norm_eps),
    }
    return ParsedSpace(global_choices, stage_choices, [{} for _ in stage_choices], settings)


def mlp_hidden(embed_dim: int, ratio: float) -> int:
    """Hidden width of a layer's MLP (AutoFormer: embed dim times the layer's MLP ratio)."""
    return int(round(embed_dim * ratio))


@dataclass(frozen=True)
class ViTLayerLayout:
    """One active transformer layer of a child."""

    embed_dim: int
    heads: int
    head_dim: int
    mlp_hidden: int

    @property
    def qkv_dim(self) -> int:
        """Width of each of q, k and v (the attention's inner width)."""
        return self.heads * self.head_dim


@dataclass(frozen=True)
class ViTLayout:
    resolution: int
    patch_size: int
    grid: int  # patches per side
    embed_dim: int
    layers: tuple[ViTLayerLayout, ...]

    @property
    def num_tokens(self) -> int:
        """Patches plus the class token."""
        return self.grid**2 + 1


# cached: a training step lays out every child it activates, and complexity counts lay out
# every child a search scores (the layout is a pure function of the space and the arch)
@functools.lru_cache(maxsize=4096)
def vit_layout(space: SearchSpace, arch: Arch) -> ViTLayout:
    """Exact geometry of ``arch`` (assumed valid for ``space``)."""
    s = space.settings
    embed = int(arch["embed_dim"])
    layers = tuple(
        ViTLayerLayout(embed, int(layer["heads"]), s["head_dim"], mlp_hidden(embed, layer["mlp_ratio"]))
        for layer in arch.stages[: int(arch["depth"])]
    )
    return ViTLayout(arch.resolution, s["patch_size"], arch.resolution // s["patch_size"], embed, layers)


def count_vit(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> tuple[int, int]:
    """Multiply-adds and parameters of ``arch`` (conventions: ``supernet.metrics.complexity``)."""
    lay = vit_layout(space, arch)
    c, n, p2 = lay.embed_dim, lay.num_tokens, lay.patch_size**2
    qkv_bias = space.settings["qkv_bias"]
    macs = lay.grid**2 * in_chans * c * p2  # patch embedding
    params = in_chans * c * p2 + c + c + n * c  # patch conv (with bias), class token, position embedding
    for layer in lay.layers:
        inner, hidden = layer.qkv_dim, layer.mlp_hidden
        macs += n * c * 3 * inner + 2 * n * n * inner + n * inner * c  # qkv, q @ k^T and scores @ v, proj
        macs += 2 * n * c * hidden  # MLP
        params += 4 * c  # two layer norms
        params += c * 3 * inner + (3 * inner if qkv_bias else 0) + inner * c + c
        params += c * hidden + hidden + hidden * c + c
    macs += c * num_classes  # classifier on the class token only
    params += 2 * c + c * num_classes + num_classes  # final norm, classifier
    return macs, params


register_family("vit", parser=parse_vit, counter=count_vit, model="supernet.models.vit:ViTSupernet")
