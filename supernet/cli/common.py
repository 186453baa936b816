"""What the command-line entry points share: one-line errors and plain config conversion."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from supernet.errors import first_line
from supernet.space.loading import config_dir

# Absolute path, so the commands find the tree from a checkout or an installed package alike.
CONFIG_PATH = str(config_dir())

# Errors a user causes or can act on (bad config, bad file, bad arch, a diverging run, a path that
# cannot be written): one line, exit code 2. ``supernet.training.DivergenceError`` is a
# FloatingPointError (an ArithmeticError); OSError covers missing files, permissions, full disks.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError, TypeError, ArithmeticError)


def plain(cfg: Any) -> Any:
    """OmegaConf node -> plain Python containers (resolved)."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def exit_with_one_line(err: BaseException) -> NoReturn:
    """Print the first line of a user error on stderr and exit with code 2."""
    print(f"error: {first_line(err)}", file=sys.stderr)
    sys.exit(2)


def debugging(cfg_debug: Any = False) -> bool:
    """Full tracebacks: ``debug=true`` on the command line, or ``SUPERNET_DEBUG`` set."""
    return bool(cfg_debug) or bool(os.environ.get("SUPERNET_DEBUG"))


def user_errors(fn: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Turn user errors into one readable line and a non-zero exit (full traceback with debug=true)."""

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return fn(cfg)
        except USER_ERRORS as err:
            if debugging(cfg.get("debug", False)):
                raise
            exit_with_one_line(err)
        except InstantiationException as err:  # a config group's object refused its arguments
            cause = err.__cause__
            # Lightning's MisconfigurationException (a bad Trainer argument), named without importing Lightning
            known = isinstance(cause, USER_ERRORS) or type(cause).__name__ == "MisconfigurationException"
            if debugging(cfg.get("debug", False)) or not known:
                raise
            key = re.search(r"full_key: (\S+)", str(err))
            named = key is None or f"{key.group(1)}." in str(cause) or f"{key.group(1)}=" in str(cause)
            exit_with_one_line(RuntimeError(str(cause) if named else f"{key.group(1)}: {cause}"))

    return wrapper
