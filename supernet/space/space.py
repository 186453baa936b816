"""``SearchSpace``: the choices of every elastic dimension, declared as data (``conf/space/*.yaml``).

The space is family-agnostic: a *family* (``mbconv``, ..., see ``supernet.space.family``) reads
its YAML section into global choices, per-stage choices and fixed per-stage settings; everything
here (max/min/sample/mutate/crossover/size/validate/resolve) works on those choices alone.
"""

from __future__ import annotations

import copy
import math
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from supernet.errors import first_line
from supernet.space.arch import Arch, Choices, Number
from supernet.space.errors import ArchError, SpaceError
from supernet.space.family import get_family

_STAGE_KEY = re.compile(r"^stages?\[?(\d+)\]?\.([a-z_]+)$")


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension: a global field (``stage is None``) or a field of one stage."""

    stage: int | None
    field: str
    choices: tuple[Number, ...]

    @property
    def key(self) -> str:
        return self.field if self.stage is None else f"stages[{self.stage}].{self.field}"


def as_choices(value: Any, where: str, positive: bool = True) -> tuple[Number, ...]:
    """Read a choice list (a scalar means a single choice); sorted ascending, duplicates refused."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise SpaceError(f"{where}: the list of choices is empty")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (positive and v <= 0):
            raise SpaceError(f"{where}: choice {v!r} is not a positive number")
        out.append(int(v) if float(v).is_integer() else float(v))
    if len(set(out)) != len(out):
        raise SpaceError(f"{where}: duplicate choices in {values}")
    return tuple(sorted(out))


class SearchSpace:
    """All children a supernet can run. Build it with ``from_dict`` or ``load_space``."""

    def __init__(self, declaration: Mapping[str, Any]):
        if not isinstance(declaration, Mapping):
            raise SpaceError(f"a search space must be a mapping, got {type(declaration).__name__}")
        family = get_family(declaration.get("family"))
        name = declaration.get("name")
        if not isinstance(name, str) or not name:
            raise SpaceError("a search space needs a 'name'")
        self.name: str = name
        self.family: str = family.name
        self._declaration = copy.deepcopy(dict(declaration))
        parsed = family.parser(declaration)
        self.global_choices = parsed.global_choices
        self.stage_choices = parsed.stage_choices
        self.stage_settings = parsed.stage_settings
        self.settings = parsed.settings
        if "resolution" not in self.global_choices:
            raise SpaceError(f"space {name!r}: the family parser gave no 'resolution' choices")
        self.dimensions: tuple[Dimension, ...] = tuple(
            [Dimension(None, f, c) for f, c in self.global_choices.items()]
            + [Dimension(i, f, c) for i, s in enumerate(self.stage_choices) for f, c in s.items()]
        )
        # arch strings and Arch values already resolved (resolution is deterministic): a training
        # step resolves every child it activates, and validating one again was a fifth of
        # ``set_arch`` (benchmarks/host_overhead.py)
        self._resolved: dict[Arch | str, Arch] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, declaration: Mapping[str, Any]) -> SearchSpace:
        return cls(declaration)

    def to_dict(self) -> dict[str, Any]:
        """The declaration this space was built from (what checkpoints and artifacts record)."""
        return copy.deepcopy(self._declaration)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._declaration == other._declaration

    def __hash__(self) -> int:
        return hash((self.name, self.family))

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, family={self.family!r}, stages={len(self.stage_choices)})"

    @property
    def num_stages(self) -> int:
        return len(self.stage_choices)

    # -- children -----------------------------------------------------------------------------
    def _build(self, pick: Callable[[Dimension], Number]) -> Arch:
        globals_: dict[str, Number] = {}
        stages: list[dict[str, Number]] = [{} for _ in self.stage_choices]
        for d in self.dimensions:
            (globals_ if d.stage is None else stages[d.stage])[d.field] = pick(d)
        return Arch(globals_, stages)

    def max(self) -> Arch:
        return self._build(lambda d: d.choices[-1])

    def min(self) -> Arch:
        return self._build(lambda d: d.choices[0])

    def mid(self) -> Arch:
        """The child with the median choice of every dimension (lower median for even counts)."""
        return self._build(lambda d: d.choices[(len(d.choices) - 1) // 2])

    def sample(self, generator: random.Random) -> Arch:
        """A uniformly random child (each dimension independently)."""
        return self._build(lambda d: d.choices[generator.randrange(len(d.choices))])

    def value(self, arch: Arch, dim: Dimension) -> Number:
        return arch.globals[dim.field] if dim.stage is None else arch.stages[dim.stage][dim.field]

    def dimension(self, key: str) -> Dimension:
        """The dimension named ``key``: a global field (``resolution``, ``stem``, ``head``, ...) or a
        stage field as ``stage<i>.<field>``, stages counted from 0. ``stages[<i>].<field>`` (the form
        of ``Dimension.key``) is accepted too; on a Hydra command line it needs quotes."""
        key = str(key).strip()
        match = _STAGE_KEY.match(key)
        stage, name = (int(match.group(1)), match.group(2)) if match else (None, key)
        for dim in self.dimensions:
            if dim.stage == stage and dim.field == name:
                return dim
        globals_ = [d.field for d in self.dimensions if d.stage is None]
        stage_fields = sorted({d.field for d in self.dimensions if d.stage is not None})
        raise ArchError(
            f"{key!r} is not a dimension of space {self.name!r}: use one of {globals_} or "
            f"stage<i>.<field> with i in 0..{self.num_stages - 1} and field in {stage_fields}"
        )

    def with_values(self, arch: Arch, values: Mapping[Dimension, Number]) -> Arch:
        """``arch`` with the given dimensions set to new values."""
        globals_ = dict(arch.globals)
        stages = [dict(s) for s in arch.stages]
        for dim, v in values.items():
            (globals_ if dim.stage is None else stages[dim.stage])[dim.field] = v
        return Arch(globals_, stages)

    def mutate(self, arch: Arch, prob: float, generator: random.Random) -> Arch:
        """Each dimension, with probability ``prob``, moves to another of its choices."""
        changes = {}
        for dim in self.dimensions:
            if len(dim.choices) > 1 and generator.random() < prob:
                others = [c for c in dim.choices if c != self.value(arch, dim)]
                changes[dim] = others[generator.randrange(len(others))]
        return self.with_values(arch, changes)

    def crossover(self, a: Arch, b: Arch, generator: random.Random, prob: float = 0.5) -> Arch:
        """Each dimension taken from ``a`` with probability ``prob``, else from ``b``."""
        return self._build(lambda d: self.value(a, d) if generator.random() < prob else self.value(b, d))

    def size(self) -> int:
        """Number of distinct children (product of the number of choices of every dimension)."""
        return math.prod(len(d.choices) for d in self.dimensions)

    # -- checking -----------------------------------------------------------------------------
    def validate(self, arch: Arch | str) -> Arch:
        """Return ``arch`` (parsed if a string) or raise ``ArchError`` naming what is wrong."""
        if isinstance(arch, str):
            arch = Arch.parse(arch)
        where = f"arch {str(arch)!r} does not belong to space {self.name!r}"
        if set(arch.globals) != set(self.global_choices):
            raise ArchError(
                f"{where}: global fields {sorted(arch.globals)} differ from the space's {sorted(self.global_choices)}"
            )
        if len(arch.stages) != self.num_stages:
            raise ArchError(f"{where}: it has {len(arch.stages)} stages, the space has {self.num_stages}")
        for i, (stage, choices) in enumerate(zip(arch.stages, self.stage_choices)):
            if set(stage) != set(choices):
                raise ArchError(f"{where}: stages[{i}] has fields {sorted(stage)}, expected {sorted(choices)}")
        for dim in self.dimensions:
            value = self.value(arch, dim)
            if value not in dim.choices:
                raise ArchError(f"{where}: {dim.key} = {value} is not allowed (choices: {list(dim.choices)})")
        return arch

    def resolve(self, spec: Arch | str | os.PathLike | Mapping[str, Any]) -> Arch:
        """An arch of this space from ``max``, ``min``, ``mid``, ``random:<seed>``, an arch string, a
        mapping, an ``Arch``, the path of a YAML file (``.yaml``/``.yml``: an artifact's
        ``arch.yaml``, a search's ``best_*.yaml``, or a plain arch mapping), or ``<table>.csv:<n>``:
        row ``n`` of a table of children (``pareto.csv``: its ``point`` column numbers the rows
        from 0). Raises ``ArchError`` naming what does not fit the space, ``FileNotFoundError`` for
        a missing file."""
        if isinstance(spec, os.PathLike) or (isinstance(spec, str) and spec.endswith((".yaml", ".yml"))):
            return self._resolve_file(Path(spec))
        if isinstance(spec, str) and ".csv:" in spec:
            path, row = spec.rsplit(":", 1)
            return self._resolve_row(Path(path), row)
        return self._resolve_value(spec)

    def _resolve_row(self, path: Path, row: str) -> Arch:
        import csv

        if not path.is_file():
            raise FileNotFoundError(f"table not found: {path}")
        if not row.isdigit():
            raise ArchError(f"'{path}:<row>' needs a row number (0 is the first row under the header), got {row!r}")
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except (UnicodeDecodeError, csv.Error) as err:
            raise ArchError(f"{path} is not a readable CSV table ({first_line(err)})") from None
        if rows and "arch" not in rows[0]:
            raise ArchError(f"{path} has no 'arch' column: not a table of children")
        if int(row) >= len(rows):
            raise ArchError(f"{path} has {len(rows)} row(s) of children: row {row} does not exist (rows count from 0)")
        try:
            return self._resolve_value(rows[int(row)]["arch"])
        except ArchError as err:
            raise ArchError(f"{path} row {row}: {err}") from None

    def _resolve_value(self, spec: Any) -> Arch:
        if not isinstance(spec, (Arch, str)):
            return self._resolve_uncached(spec)
        arch = self._resolved.get(spec)
        if arch is None:
            arch = self._resolve_uncached(spec)
            if len(self._resolved) >= 4096:  # bounded: a long search visits many children once
                self._resolved.clear()
            self._resolved[spec] = arch
        return arch

    def _resolve_uncached(self, spec: Any) -> Arch:
        if isinstance(spec, str) and spec in ("max", "min", "mid"):
            return getattr(self, spec)()
        if isinstance(spec, str) and spec.startswith("random:"):
            seed = spec.split(":", 1)[1]
            if not seed.isdigit():
                raise ArchError(f"'random:<seed>' needs an integer seed, got {spec!r}")
            return self.sample(random.Random(int(seed)))
        if isinstance(spec, Mapping):
            spec = Arch.from_dict(spec)
        elif isinstance(spec, str):
            spec = Arch.parse(spec)
        elif not isinstance(spec, Arch):
            raise ArchError(f"cannot read an arch from {spec!r}")
        arch = self.validate(spec)
        # fields in the space's order: the same child written in another order (a YAML file with
        # sorted keys) is the same arch, with the same string form
        return self._build(lambda d: self.value(arch, d))

    def _resolve_file(self, path: Path) -> Arch:
        if not path.is_file():
            raise FileNotFoundError(f"arch file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ArchError(f"arch file {path} is not valid YAML: {first_line(err)}") from None
        if isinstance(data, Mapping) and isinstance(data.get("space"), Mapping) and data["space"] != self._declaration:
            raise ArchError(
                f"arch file {path} was made for space {data['space'].get('name')!r}, which differs "
                f"from space {self.name!r}"
            )
        if isinstance(data, Mapping) and "arch" in data:
            data = data["arch"]
        try:
            return self._resolve_value(data)
        except ArchError as err:
            raise ArchError(f"arch file {path}: {err}") from None


def check_keys(section: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise SpaceError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def as_choices_map(section: Mapping[str, Any], fields: Sequence[str], where: str) -> dict[str, tuple[Number, ...]]:
    missing = [f for f in fields if f not in section]
    if missing:
        raise SpaceError(f"{where}: missing choice field(s) {missing}")
    return {f: as_choices(section[f], f"{where}.{f}") for f in fields}


__all__ = ["SearchSpace", "Dimension", "ArchError", "SpaceError", "Choices"]
