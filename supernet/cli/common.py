"""What the command-line entry points share: one-line errors and plain config conversion."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.space.loading import config_dir

# Absolute path, so the commands find the tree from a checkout or an installed package alike.
CONFIG_PATH = str(config_dir())

# Errors a user causes or can act on (bad config, bad file, bad arch, a diverging run): one line,
# exit code 2. ``supernet.training.DivergenceError`` is a FloatingPointError (an ArithmeticError).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, KeyError, TypeError, ArithmeticError)


def plain(cfg: Any) -> Any:
    """OmegaConf node -> plain Python containers (resolved)."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def user_errors(fn: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Turn user errors into one readable line and a non-zero exit (full traceback with debug=true)."""

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return fn(cfg)
        except USER_ERRORS as err:
            if cfg.get("debug", False) or os.environ.get("SUPERNET_DEBUG"):
                raise
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper
