"""Writing outputs safely: every file and folder a command writes appears whole or not at all.

A destination is checked before any work starts (``check_file_destination``,
``check_folder_destination``), then written under a temporary sibling name and renamed
(``atomic_file``, ``atomic_folder``): a crash or a kill leaves the previous version, never half of
a new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def _check_parents(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write {path}: {parent} is a file, not a folder")
            return


def check_file_destination(path: str | Path, what: str = "output") -> Path:
    """Refuse a destination file that is a folder or lies under a file (checked before any work)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give the path of a file")
    _check_parents(path)
    return path


def check_folder_destination(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing destination folder unless ``overwrite``, and a file in its place."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder")
    if path.exists() and not overwrite:
        raise ValueError(f"artifact folder {path} already exists (pass overwrite=true to replace it)")
    _check_parents(path)
    return path


def umask() -> int:
    """The process's file-creation mask (there is no getter: set it and put it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_user_file(path: str | Path) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would (0666 less the umask), for writers
    that create theirs private (safetensors writes 0600), so every output is readable alike."""
    os.chmod(path, 0o666 & ~umask())


def _temporary_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path that replaces ``path`` only when the block succeeds."""
    path = check_file_destination(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary sibling folder that becomes ``path`` only when the block succeeds."""
    path = check_folder_destination(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():  # overwrite: move the old one aside first, so the swap is two renames
            old = tmp.with_suffix(".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
