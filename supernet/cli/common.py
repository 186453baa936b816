"""What the command-line entry points share: one-line errors, plain config conversion, and the
checkpoint and child evaluator of the commands that read a checkpoint (extract, evaluate, search)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from supernet.errors import first_line
from supernet.space.loading import config_dir

# Absolute path, so the commands find the tree from a checkout or an installed package alike.
CONFIG_PATH = str(config_dir())

# Errors a user causes or can act on (bad config, bad file, bad arch, a diverging run, a path that
# cannot be written): one line, exit code 2. ``supernet.training.DivergenceError`` is a
# FloatingPointError (an ArithmeticError); OSError covers missing files, permissions, full disks;
# OmegaConfBaseException a config key that is missing, mistyped or not interpolable.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    KeyError,
    TypeError,
    ArithmeticError,
    OmegaConfBaseException,
)


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
            from lightning.fabric.utilities.exceptions import MisconfigurationException  # a bad Trainer argument

            cause = err.__cause__
            if debugging(cfg.get("debug", False)) or not isinstance(cause, (*USER_ERRORS, MisconfigurationException)):
                raise
            exit_with_one_line(cause)

    return wrapper


def load(cfg: DictConfig):
    """The checkpoint's supernet (read safely) on the configured device."""
    from supernet.child import load_checkpoint, resolve_device

    if OmegaConf.is_missing(cfg, "ckpt_path") or cfg.ckpt_path is None:
        raise ValueError("ckpt_path is required: a checkpoint of supernet-train (e.g. .../checkpoints/last.ckpt)")
    return load_checkpoint(cfg.ckpt_path, map_location=resolve_device(str(cfg.device)))


def evaluator(cfg: DictConfig, loaded, *, cache_val: bool = False, val_batches: int | None = None, test: bool = True):
    """An evaluator of ``loaded``'s children over the configured data (``cfg.data``: the data the
    supernet was trained on), with cached calibration batches and the configured latency settings."""
    from hydra.utils import instantiate

    from supernet.child import evaluator_for, resolve_device
    from supernet.metrics import LatencySettings

    lat = plain(cfg.latency)
    latency = LatencySettings(**{**lat, "device": str(resolve_device(str(lat.get("device", "cpu"))))})
    return evaluator_for(
        loaded.model,
        instantiate(cfg.data),
        calib_batches=cfg.calib_batches,
        device=resolve_device(str(cfg.device)),
        latency=latency,
        cache_val=cache_val,
        val_batches=val_batches,
        test=test,
    )
