"""``Arch``: one child of a search space, as an immutable, hashable value.

An arch has *global* choices (e.g. ``resolution``, ``stem``, ``head``) and one group of choices per
stage (e.g. ``width``, ``depth``, ``kernel``, ``expand``). Its one-line string form is built from
short field codes so it can be typed on a Hydra command line without quoting::

    r192s16h1792/w16d1k3e1/w24d3k3e4/...

Globals come first, then one ``/``-separated group per stage. Field names that have no short code
are written in full (``width_mult0.5``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from supernet.space.errors import ArchError

Number = int | float

# Short codes for the string form. A field without a code is written under its full name.
FIELD_CODES: dict[str, str] = {
    "resolution": "r",
    "stem": "s",
    "head": "h",
    "width": "w",
    "depth": "d",
    "kernel": "k",
    "expand": "e",
    "embed_dim": "c",
    "heads": "n",
    "mlp_ratio": "m",
}
_CODE_FIELDS = {code: name for name, code in FIELD_CODES.items()}
_TOKEN = re.compile(r"([a-z_]+?)(\d+(?:\.\d+)?)")


def _normalise(name: str, value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArchError(f"field {name!r}: value {value!r} is not a number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fmt(value: Number) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


class Choices(Mapping[str, Number]):
    """An immutable, ordered mapping of field name to chosen value (one stage, or the globals)."""

    __slots__ = ("_items", "_hash")

    def __init__(self, items: Mapping[str, Any] | Sequence[tuple[str, Any]]):
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = tuple((str(k), _normalise(str(k), v)) for k, v in pairs)
        self._hash = hash(self._items)

    def __getitem__(self, key: str) -> Number:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __getattr__(self, key: str) -> Number:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Choices):
            return self._items == other._items
        return NotImplemented

    def replace(self, **changes: Number) -> Choices:
        return Choices([(k, changes.get(k, v)) for k, v in self._items])

    def __repr__(self) -> str:
        return "Choices(" + ", ".join(f"{k}={_fmt(v)}" for k, v in self._items) + ")"

    def to_str(self) -> str:
        return "".join(FIELD_CODES.get(k, k) + _fmt(v) for k, v in self._items)

    @staticmethod
    def parse(text: str, where: str) -> Choices:
        pos, items = 0, []
        for match in _TOKEN.finditer(text):
            if match.start() != pos:
                break
            code, value = match.groups()
            items.append((_CODE_FIELDS.get(code, code), float(value) if "." in value else int(value)))
            pos = match.end()
        if pos != len(text) or not items:
            raise ArchError(f"malformed arch string: cannot read {where} {text!r} (expected fields like 'w16d2k3e4')")
        return Choices(items)


class Arch:
    """One child: global choices plus one ``Choices`` per stage. Immutable and hashable."""

    __slots__ = ("globals", "stages", "_hash")

    def __init__(self, globals: Mapping[str, Any], stages: Sequence[Mapping[str, Any]]):
        object.__setattr__(self, "globals", globals if isinstance(globals, Choices) else Choices(globals))
        object.__setattr__(self, "stages", tuple(s if isinstance(s, Choices) else Choices(s) for s in stages))
        object.__setattr__(self, "_hash", hash((self.globals, self.stages)))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Arch is immutable; use replace()")

    def __copy__(self) -> Arch:
        return self  # immutable: a copy is the same value (and copying a model that holds one works)

    def __deepcopy__(self, memo: dict) -> Arch:
        return self

    def __getitem__(self, key: str) -> Number:
        return self.globals[key]

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Arch):
            return self.globals == other.globals and self.stages == other.stages
        return NotImplemented

    def replace(self, stages: Sequence[Mapping[str, Any]] | None = None, **global_changes: Number) -> Arch:
        return Arch(self.globals.replace(**global_changes), self.stages if stages is None else stages)

    @property
    def resolution(self) -> int:
        return int(self.globals["resolution"])

    def __str__(self) -> str:
        return "/".join([self.globals.to_str(), *(s.to_str() for s in self.stages)])

    def __repr__(self) -> str:
        return f"Arch('{self}')"

    @classmethod
    def parse(cls, text: str) -> Arch:
        """Read the one-line form written by ``str(arch)``."""
        if not isinstance(text, str) or not text.strip():
            raise ArchError(f"malformed arch string {text!r}: it is empty")
        parts = text.strip().split("/")
        globals_ = Choices.parse(parts[0], "the global fields")
        stages = [Choices.parse(p, f"stage {i}") for i, p in enumerate(parts[1:])]
        return cls(globals_, stages)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON friendly): the globals plus ``stages`` as a list of dicts."""
        return {**dict(self.globals), "stages": [dict(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Arch:
        if not isinstance(data, Mapping) or "stages" not in data:
            raise ArchError(f"an arch mapping needs global fields and a 'stages' list, got {data!r}")
        stages = data["stages"]
        if not isinstance(stages, Sequence) or not all(isinstance(s, Mapping) for s in stages):
            raise ArchError("an arch mapping's 'stages' must be a list of mappings")
        return cls({k: v for k, v in data.items() if k != "stages"}, stages)
