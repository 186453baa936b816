"""Supernets built from elastic layers; ``build(space, num_classes, in_chans)`` picks the family's model."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from supernet.models.base import Supernet
from supernet.models.mbconv import MBConvSupernet
from supernet.models.resnet import ResNetSupernet
from supernet.models.vit import ViTSupernet
from supernet.space import SearchSpace, SpaceError, get_family, load_space


def model_class(family: str) -> Callable[..., Supernet]:
    """The supernet class registered for ``family`` (imported on first use when named by path)."""
    model = get_family(family).model
    if not isinstance(model, str):
        return model
    module, _, name = model.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise SpaceError(f"family {family!r} names the model {model!r}, which cannot be imported: {err}") from None


def build(space: SearchSpace | str, num_classes: int, in_chans: int = 3, **kwargs) -> Supernet:
    """The supernet of ``space`` (a ``SearchSpace`` or a space name/path); ``kwargs`` are the
    family model's keyword options (``model.kwargs`` of the training config). An option the
    model does not take is refused, naming it."""
    if isinstance(space, str):
        space = load_space(space)
    cls = model_class(space.family)
    options = [p.name for p in inspect.signature(cls).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise TypeError(
            f"the {space.family!r} supernet ({cls.__name__}) takes no option {unknown}; its options: {options}"
        )
    return cls(space, num_classes, in_chans, **kwargs)


__all__ = ["build", "model_class", "Supernet", "MBConvSupernet", "ResNetSupernet", "ViTSupernet"]
