"""What the command-line entry points share: one-line errors, their run folder, plain config
conversion, and the checkpoint and child evaluator of the commands that read a checkpoint
(extract, evaluate, search)."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
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


class RunFolder(Callback):
    """Hydra callback of every command (``hydra.callbacks.run_folder``): before Hydra creates the
    run folder (``hydra.run.dir``), check that it can be written — one line and exit code 2, not
    Hydra's traceback — and remember whether this command creates it, so that a command stopped
    by bad input removes it again (``remove_unused``) instead of leaving an empty folder behind.
    Single runs only: each job of a sweep (``-m``) keeps its folder and log."""

    created: ClassVar[dict[Path, Path]] = {}  # run folder -> the topmost folder this process created for it

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(str(config.hydra.run.dir)).absolute()
        top = path
        while not top.parent.exists():
            top = top.parent
        existed = path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()  # what counts is a write: root ignores permission bits
        except OSError as err:
            exit_with_one_line(OSError(f"hydra.run.dir={path} cannot be written: {err.strerror or err}"))
        if not existed:
            RunFolder.created[path] = top

    @classmethod
    def remove_unused(cls) -> None:
        """Remove the run folders this process created that hold nothing but Hydra's own files
        (``.hydra/`` and the command's ``.log``), and the empty parents created with them."""
        for path, top in cls.created.items():
            hydras = (path / ".hydra", *path.glob("*.log"))
            if any(f.is_file() and not any(f == h or h in f.parents for h in hydras) for f in path.rglob("*")):
                continue
            shutil.rmtree(path, ignore_errors=True)
            for parent in path.parents:
                if parent == top.parent:
                    break
                try:
                    parent.rmdir()  # only when empty: another run may share a date folder
                except OSError:
                    break
        cls.created.clear()


def user_errors(fn: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Turn user errors into one readable line and a non-zero exit (full traceback with debug=true);
    the run folder the command created for nothing is removed."""

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return fn(cfg)
        except USER_ERRORS as err:
            if debugging(cfg.get("debug", False)):
                raise
            RunFolder.remove_unused()
            exit_with_one_line(err)
        except InstantiationException as err:  # a config group's object refused its arguments
            from lightning.fabric.utilities.exceptions import MisconfigurationException  # a bad Trainer argument

            cause = err.__cause__
            if debugging(cfg.get("debug", False)) or not isinstance(cause, (*USER_ERRORS, MisconfigurationException)):
                raise
            RunFolder.remove_unused()
            exit_with_one_line(cause)

    return wrapper


def load(cfg: DictConfig):
    """The checkpoint's supernet (read safely) on the configured device."""
    from supernet.child import load_checkpoint, resolve_device

    if OmegaConf.is_missing(cfg, "ckpt_path") or cfg.ckpt_path is None:
        raise ValueError("ckpt_path is required: a checkpoint of supernet-train (e.g. .../checkpoints/last.ckpt)")
    return load_checkpoint(cfg.ckpt_path, map_location=resolve_device(str(cfg.device)))


def held_out_split(loaded) -> dict:
    """The search split that the checkpoint's training held out (``data.search_size``), as the
    checkpoint records it; a clear error when its training used every training image."""
    recorded = loaded.meta.get("search_split") or {}
    if not recorded.get("size"):
        raise ValueError(
            f"{loaded.path} was trained on every training image: no search split is held out. Train with "
            "data.search_size=<N> (e.g. a tenth of the training images) to search on images the supernet "
            "never trained on, or pass split=val to search on validation (which then stops being an unbiased report)"
        )
    return dict(recorded)


def holds_out_search(loaded) -> bool:
    """Whether the checkpoint's training held out a search split (its children are then scored on
    it too, beside validation and test)."""
    return bool((loaded.meta.get("search_split") or {}).get("size"))


def evaluator(
    cfg: DictConfig,
    loaded,
    *,
    cache_val: bool = False,
    val_batches: int | None = None,
    test: bool = True,
    search: bool = False,
):
    """An evaluator of ``loaded``'s children over the configured data (``cfg.data``: the data the
    supernet was trained on), with cached calibration batches and the configured latency settings.
    With ``search``, the search split the checkpoint's training held out is read too (its size is
    taken from the checkpoint; data that would hold out other images is refused)."""
    from hydra.utils import instantiate

    from supernet.child import evaluator_for, resolve_device
    from supernet.metrics import LatencySettings

    lat = plain(cfg.latency)
    latency = LatencySettings(**{**lat, "device": str(resolve_device(str(lat.get("device", "cpu"))))})
    recorded = held_out_split(loaded) if search else None
    datamodule = instantiate(cfg.data, **({"search_size": recorded["size"]} if recorded else {}))
    ev = evaluator_for(
        loaded.model,
        datamodule,
        calib_batches=cfg.calib_batches,
        device=resolve_device(str(cfg.device)),
        latency=latency,
        cache_val=cache_val,
        val_batches=val_batches,
        test=test,
        search=search,
    )
    if recorded and datamodule.search_split() != recorded:
        raise ValueError(
            f"the data holds out other images ({datamodule.search_split()}) than the training of "
            f"{loaded.path} did ({recorded}): pass the training data config (data=...)"
        )
    return ev
