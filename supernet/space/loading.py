"""Find the config tree and load search spaces from ``conf/space/<name>.yaml`` or a file path."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from supernet.errors import yaml_error
from supernet.space.errors import SpaceError
from supernet.space.space import SearchSpace


def config_dir() -> Path:
    """The shipped Hydra config tree: ``conf/`` of a checkout, or the copy installed in the package."""
    return Path(__file__).resolve().parent.parent / "conf"


def available_spaces() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "space").glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load a shipped space by name (``tiny``) or a space from a YAML file path.

    A bare name (no suffix, no folder separator) always means a shipped space, whatever the working
    directory holds (a folder named ``attentivenas`` there does not hide the shipped space); a
    file of one's own is named as a path: ``my_space.yaml``, ``./my_space``."""
    text = str(name_or_path)
    path = Path(name_or_path)
    if not (isinstance(name_or_path, Path) or path.suffix or "/" in text or os.sep in text):
        path = config_dir() / "space" / f"{text}.yaml"
        if not path.is_file():
            raise SpaceError(f"unknown search space {text!r}; shipped spaces: {available_spaces()}")
    if not path.is_file():
        raise SpaceError(f"search space file not found: {path}")
    try:
        declaration = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpaceError(f"search space file is not valid YAML: {yaml_error(err, path)}") from None
    return SearchSpace.from_dict(declaration)
