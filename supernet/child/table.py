"""Tables of children (CSV, plus parquet when pandas and pyarrow are installed), and the child
lists that ``supernet-evaluate`` measures: named children, seeded random samples, one-dimension grids.

A table is rewritten through a temporary file and a rename after every row, so an interrupted
run leaves a complete table of the rows done so far, and a rerun skips them (resume). Every row
says what its numbers depend on (the checkpoint's SHA-256 and the evaluation settings), so a rerun
with another checkpoint or other settings is refused rather than mixed into the table.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from supernet.files import atomic_file, check_file_destination
from supernet.space import Arch, SearchSpace


def grid_archs(space: SearchSpace, key: str) -> list[Arch]:
    """Every choice of one dimension, all other dimensions at their largest choice."""
    dim = space.dimension(key)
    return [space.with_values(space.max(), {dim: value}) for value in dim.choices]


def sample_archs(space: SearchSpace, count: int, seed: int) -> list[Arch]:
    """``count`` distinct random children (fewer if the space is smaller), drawn from ``seed``."""
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"sample must be a non-negative integer, got {count!r}")
    gen, out = random.Random(seed), {}
    for _ in range(count * 100):
        if len(out) >= min(count, space.size()):
            break
        arch = space.sample(gen)
        out.setdefault(arch, None)
    return list(out)


def read_rows(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path} is not a readable CSV table ({err})") from None


def csv_cell(value: Any) -> Any:
    """What a CSV cell holds for ``value``: nothing for a value not measured (None or NaN)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def write_rows(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` as a CSV atomically (temporary file + rename); columns in first-seen order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)


def write_parquet(csv_path: str | Path) -> Path | None:
    """A parquet copy of a CSV table when pandas and pyarrow are installed; None otherwise."""
    if importlib.util.find_spec("pandas") is None or importlib.util.find_spec("pyarrow") is None:
        return None
    import pandas as pd

    out = Path(csv_path).with_suffix(".parquet")
    with atomic_file(out) as tmp:
        pd.read_csv(csv_path).to_parquet(tmp, index=False)
    return out


def identity_cells(identity: Mapping[str, Any]) -> dict[str, str]:
    """The CSV cells of a table's identity: strings as they are, mappings as compact sorted JSON."""
    return {
        k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)
        for k, v in identity.items()
    }


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _differences(there: str, here: str) -> str:
    """The settings that differ between a table's cell and this call's, named key by key."""
    try:
        old, new = _flat(json.loads(there)), _flat(json.loads(here))
    except json.JSONDecodeError:
        return f"{there!r} there, {here!r} now"
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k, "(unset)") != new.get(k, "(unset)")]
    shown = ", ".join(f"{k}={old.get(k, '(unset)')!r} there, {new.get(k, '(unset)')!r} now" for k in keys[:3])
    return shown + (f" (and {len(keys) - 3} more)" if len(keys) > 3 else "")


def check_identity(path: Path, rows: Sequence[Mapping[str, Any]], identity: Mapping[str, Any], remedy: str) -> None:
    """Refuse (one line naming the file and what differs) a table whose rows were measured on
    another checkpoint (``checkpoint_sha256``) or with other ``settings`` than ``identity`` says,
    or whose rows do not say."""
    expected = identity_cells(identity)
    for row in rows:
        for column, value in expected.items():
            there = row.get(column)
            if not there:
                raise ValueError(
                    f"{path} does not say which checkpoint and settings its numbers come from (no {column!r} "
                    f"column: not written by this version of supernet): {remedy}"
                )
            if there == value:
                continue
            if column == "checkpoint_sha256":
                what = f"of another checkpoint (SHA-256 {there[:12]}... there, {value[:12]}... for this one)"
            else:
                what = f"measured with other {column} ({_differences(there, value)})"
            raise ValueError(f"{path} holds numbers {what}: {remedy}")


class KeyedTable:
    """A CSV table of children tied to what its numbers depend on: every row carries the
    ``identity`` columns (the checkpoint's SHA-256 and the settings), and rows found in the file
    must carry the same; ``fresh`` ignores the rows found (the file is replaced at the first
    write). ``remedy`` tells a refused user the ways on."""

    def __init__(self, path: str | Path, identity: Mapping[str, Any], fresh: bool = False, remedy: str = ""):
        self.path = check_file_destination(path, "output")
        self.identity = identity_cells(identity)
        self.rows: list[dict[str, Any]] = [] if fresh else read_rows(self.path)
        if self.rows and "arch" not in self.rows[0]:
            raise ValueError(f"{self.path} exists but has no 'arch' column: not a table of children ({remedy})")
        check_identity(self.path, self.rows, identity, remedy)

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace the table by ``rows`` (each given the identity columns), atomically."""
        self.rows = [{**{k: csv_cell(v) for k, v in row.items()}, **self.identity} for row in rows]
        write_rows(self.path, self.rows)


class ResumableTable(KeyedTable):
    """A keyed CSV of one row per arch; rows already in the file are kept and their archs skipped."""

    def __init__(self, path: str | Path, identity: Mapping[str, Any], fresh: bool = False, remedy: str = ""):
        super().__init__(path, identity, fresh, remedy)
        self.done = {row["arch"] for row in self.rows}

    def todo(self, archs: Iterable[Arch]) -> list[Arch]:
        return [a for a in dict.fromkeys(archs) if str(a) not in self.done]

    def add(self, row: Mapping[str, Any]) -> None:
        self.write([*self.rows, row])
        self.done.add(str(row["arch"]))
