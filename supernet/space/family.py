"""Network families: each registered once, with one ``register_family`` call, by its space module.

A family is what the package needs to know about one kind of network (``mbconv``, ``resnet``,
``vit``, ...), all named in one place:

- ``parser``: reads the family's section of a space declaration (``family: <name>`` in
  ``conf/space/*.yaml``) into a ``ParsedSpace``;
- ``counter``: ``(space, arch, in_chans, num_classes) -> (multiply-adds, parameters)`` of a child,
  analytically (``supernet.metrics.complexity`` reports it);
- ``model``: the supernet class, or its import path ``"package.module:Class"``. The path form lets
  a family's space module name its model although ``supernet.space`` must not import
  ``supernet.models``; ``supernet.models.build`` imports it when a model is first built.

See ``docs/adding_a_family.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supernet.space.arch import Number
from supernet.space.errors import SpaceError

if TYPE_CHECKING:
    from supernet.space.arch import Arch
    from supernet.space.space import SearchSpace


@dataclass
class ParsedSpace:
    """What a family parser returns: choices, fixed settings and family-level settings."""

    global_choices: dict[str, tuple[Number, ...]]
    stage_choices: list[dict[str, tuple[Number, ...]]]
    stage_settings: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)


Parser = Callable[[Mapping[str, Any]], ParsedSpace]
Counter = Callable[["SearchSpace", "Arch", int, int], tuple[int, int]]


@dataclass(frozen=True)
class Family:
    name: str
    parser: Parser
    counter: Counter
    model: str | Callable[..., Any]


_FAMILIES: dict[str, Family] = {}


def register_family(name: str, *, parser: Parser, counter: Counter, model: str | Callable[..., Any]) -> Family:
    """Register the family ``name``: its space parser, complexity counter and supernet model."""
    if name in _FAMILIES:
        raise SpaceError(f"family {name!r} is already registered")
    if isinstance(model, str) and ":" not in model:
        raise SpaceError(f"family {name!r}: a model path reads 'package.module:Class', got {model!r}")
    _FAMILIES[name] = family = Family(name, parser, counter, model)
    return family


def families() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: Any) -> Family:
    """The registered family ``name``, or a ``SpaceError`` naming the known families."""
    if not isinstance(name, str) or name not in _FAMILIES:
        raise SpaceError(f"unknown space family {name!r}; known families: {families()}")
    return _FAMILIES[name]
