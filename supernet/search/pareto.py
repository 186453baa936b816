"""Pareto front: the items no other item beats on both cost (lower) and value (higher): the scored
candidates of a search, the children that ``supernet.analysis`` plots."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def pareto_front(
    items: Iterable[T], cost: Callable[[T], Any] = lambda c: c.macs, value: Callable[[T], Any] = lambda c: c.fitness
) -> list[T]:
    """Non-dominated items by (``cost`` lower, ``value`` higher), sorted by increasing cost.
    Of items with equal cost only the best value is kept."""
    front, best = [], None
    for item in sorted(items, key=lambda i: (cost(i), _neg(value(i)))):
        if best is None or value(item) > best:
            front.append(item)
            best = value(item)
    return front


def _neg(value: Any) -> Any:
    return tuple(-v for v in value) if isinstance(value, tuple) else -value
