"""Names of a configured list of children (validation children, evaluation tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def child_names(specs: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """Name the children of a spec list: a mapping keeps its names; in a list, ``max``/``min``/
    ``mid`` name themselves, ``random:<seed>`` becomes ``random<seed>`` and anything else (an arch
    string, an arch file) ``child<i>``."""
    if isinstance(specs, Mapping):
        return {str(k): v for k, v in specs.items()}
    names = {}
    for i, spec in enumerate(specs):
        spec = str(spec)
        name = (
            spec
            if spec in ("max", "min", "mid")
            else spec.replace(":", "")
            if spec.startswith("random:")
            else f"child{i}"
        )
        if name in names:
            raise ValueError(f"validation.children lists {spec!r} twice")
        names[name] = spec
    return names
