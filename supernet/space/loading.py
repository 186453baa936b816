"""Find the config tree and load search spaces from ``conf/space/<name>.yaml`` or a file path."""

from __future__ import annotations

from pathlib import Path

import yaml

from supernet.space.errors import SpaceError
from supernet.space.space import SearchSpace


def config_dir() -> Path:
    """The shipped Hydra config tree: ``conf/`` of a checkout, or the copy installed in the package."""
    return Path(__file__).resolve().parent.parent / "conf"


def available_spaces() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "space").glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load a space by name (``tiny``) or from a YAML file path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        path = config_dir() / "space" / f"{name_or_path}.yaml"
        if not path.exists():
            raise SpaceError(f"unknown search space {str(name_or_path)!r}; shipped spaces: {available_spaces()}")
    if not path.is_file():
        raise SpaceError(f"search space file not found: {path}")
    try:
        declaration = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpaceError(f"search space file {path} is not valid YAML: {err}") from None
    return SearchSpace.from_dict(declaration)
