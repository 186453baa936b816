"""Supernets built from elastic layers; ``build(space, num_classes, in_chans)`` picks the family."""

from __future__ import annotations

from collections.abc import Callable

from supernet.models.base import Supernet
from supernet.models.mbconv import MBConvSupernet
from supernet.models.resnet import ResNetSupernet
from supernet.models.vit import ViTSupernet
from supernet.space import SearchSpace, SpaceError, load_space

FAMILY_MODELS: dict[str, Callable[..., Supernet]] = {
    "mbconv": MBConvSupernet,
    "resnet": ResNetSupernet,
    "vit": ViTSupernet,
}


def build(space: SearchSpace | str, num_classes: int, in_chans: int = 3, **kwargs) -> Supernet:
    """The supernet of ``space`` (a ``SearchSpace`` or a space name/path)."""
    if isinstance(space, str):
        space = load_space(space)
    if space.family not in FAMILY_MODELS:
        raise SpaceError(f"no supernet model for family {space.family!r}; known: {sorted(FAMILY_MODELS)}")
    return FAMILY_MODELS[space.family](space, num_classes, in_chans, **kwargs)


__all__ = ["build", "Supernet", "MBConvSupernet", "ResNetSupernet", "ViTSupernet", "FAMILY_MODELS"]
