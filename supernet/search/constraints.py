"""Deployment limits of a search: multiply-adds, parameters, measured latency.

Multiply-adds and parameters are counted analytically (thousands of archs per second), so
candidates are filtered before anything runs; latency is measured on the extracted child, and only
for archs that pass the analytic limits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAMES = ("macs_max", "params_max", "latency_ms_max")


@dataclass(frozen=True)
class Constraints:
    macs_max: float | None = None  # multiply-adds of one image
    params_max: float | None = None
    latency_ms_max: float | None = None  # median ms, measured as configured (device, batch, threads)

    def __post_init__(self) -> None:
        for name in NAMES:
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
            ):
                raise ValueError(f"constraints.{name}={value!r} must be a positive number or null")

    @property
    def label(self) -> str:
        """A file-name friendly name, e.g. ``macs_max_2000000`` (no ``=``: Hydra overrides split on it)."""
        parts = [f"{n}_{_fmt(getattr(self, n))}" for n in NAMES if getattr(self, n) is not None]
        return "_".join(parts) or "unconstrained"

    def as_dict(self) -> dict[str, float | None]:
        return {n: getattr(self, n) for n in NAMES}


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def expand(config: Mapping[str, Any]) -> list[Constraints]:
    """One ``Constraints`` per combination of limits: each of ``macs_max``, ``params_max``,
    ``latency_ms_max`` is a number, null, or a list of numbers (one search per value)."""
    unknown = sorted(set(config) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown constraint(s) {unknown}; known: {list(NAMES)}")
    values = []
    for name in NAMES:
        value = config.get(name)
        value = list(value) if isinstance(value, (list, tuple)) else [value]
        if not value:
            raise ValueError(f"constraints.{name} is an empty list")
        values.append(value)
    return [Constraints(*combo) for combo in itertools.product(*values)]


def check_achievable(constraints: Constraints, smallest: Mapping[str, float]) -> None:
    """Stop with a message naming the smallest achievable value when a limit is below it.
    ``smallest`` maps constraint names to the smallest child's value (multiply-adds, params, ms)."""
    units = {"macs_max": "multiply-adds", "params_max": "parameters", "latency_ms_max": "ms"}
    for name in NAMES:
        limit = getattr(constraints, name)
        if limit is not None and name in smallest and smallest[name] > limit:
            raise ValueError(
                f"no arch of the space meets {name}={_fmt(limit)}: the smallest child needs "
                f"{_fmt(smallest[name]) if name != 'latency_ms_max' else format(smallest[name], '.3f')} "
                f"{units[name]} (the smallest achievable value)"
            )
