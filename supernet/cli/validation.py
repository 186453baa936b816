"""Check a composed ``supernet-train`` config before any work starts.

Each problem is reported as one line naming the key, the bad value and what is allowed, so a
mistake in a sweep of a hundred jobs fails in a second rather than hours in.
"""

from __future__ import annotations

import math
from numbers import Number
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value is out of range, of the wrong type, or points at something missing."""


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _number(cfg, key, *, low=None, high=None, integer=False, allow_none=False, low_open=False) -> None:
    value = _get(cfg, key)
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, Number) or (integer and not float(value).is_integer()):
        raise ConfigError(f"{key}={value!r} must be {kind}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{key}={value!r} must be finite")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{key}={value!r} must be {'>' if low_open else '>='} {low}")
    if high is not None and value > high:
        raise ConfigError(f"{key}={value!r} must be <= {high}")


def _choice(cfg, key, allowed) -> None:
    value = _get(cfg, key)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not one of {list(allowed)}")


def _build_checked_parts(cfg: DictConfig, space) -> None:
    """Build the arch sampler, data sampler and losses once, so that their constructors' checks
    (each names its key) run now, not after the data is read (minutes for ImageNet)."""
    from hydra.utils import instantiate

    from supernet.losses import LabelSmoothingCE

    seed = _get(cfg, "seed")
    LabelSmoothingCE(_get(cfg, "model.label_smoothing"))
    if cfg.get("sampler") is not None:
        instantiate(cfg.sampler)(space=space, seed=seed)
    if cfg.get("data_sampler") is not None:
        instantiate(cfg.data_sampler)(num_samples=1, seed=seed)
    if cfg.get("distill") is not None and cfg.distill.get("_target_"):
        instantiate(cfg.distill)
    if cfg.get("fewshot") is not None and cfg.fewshot.get("_target_"):
        fewshot = instantiate(cfg.fewshot)
        fewshot.check(space)
        # the run's length in the schedule's unit, where the config alone says it (the exact check,
        # in steps, comes when training starts)
        length = _get(cfg, {"epochs": "trainer.max_epochs", "steps": "trainer.max_steps"}[fewshot.unit])
        if length is not None and length > 0:
            fewshot.check_length(length)


def validate_train_config(cfg: DictConfig) -> None:
    from supernet.space import SearchSpace
    from supernet.space.children import child_names

    _number(cfg, "seed", low=0, integer=True)
    _number(cfg, "trainer.max_epochs", low=-1, integer=True)
    if _get(cfg, "trainer.max_epochs") in (0, -1) and (_get(cfg, "trainer.max_steps") or -1) <= 0:
        raise ConfigError("trainer.max_epochs must be > 0 (or set trainer.max_steps > 0)")
    _number(cfg, "data.batch_size", low=0, low_open=True, integer=True)
    _number(cfg, "data.num_workers", low=0, integer=True, allow_none=True)
    _number(cfg, "model.optimizer.lr", low=0, low_open=True)
    _number(cfg, "model.weight_decay", low=0)
    _number(cfg, "model.kwargs.dropout", low=0, high=0.999, allow_none=True)
    _number(cfg, "model.kwargs.drop_path", low=0, high=0.999, allow_none=True)
    _number(cfg, "model.grad_clip.value", low=0, low_open=True, allow_none=True)
    _choice(cfg, "model.grad_clip.algorithm", ("value", "norm"))
    _choice(cfg, "model.accumulate", ("sum", "mean"))
    _choice(cfg, "model.on_nonfinite", ("stop", "skip"))
    _choice(cfg, "model.schedule.name", ("cosine", "exponential", "constant"))
    _number(cfg, "model.schedule.warmup_epochs", low=0, allow_none=True)
    _number(cfg, "model.schedule.final_ratio", low=0, high=1, allow_none=True)
    _number(cfg, "validation.calib_batches", low=1, integer=True)
    _number(cfg, "model.kwargs.bn_momentum", low=0, high=1, allow_none=True)
    limit = _get(cfg, "trainer.limit_train_batches")
    if limit is not None:
        _number(cfg, "trainer.limit_train_batches", low=0, low_open=True)
    # the training step optimises by hand (one step for all children): Lightning's automatic
    # clipping and accumulation do not apply, the model group has its own
    for key, neutral, instead in (
        ("trainer.gradient_clip_val", (None, 0), "model.grad_clip.value"),
        ("trainer.accumulate_grad_batches", (None, 1), "a larger data.batch_size"),
    ):
        if _get(cfg, key) not in neutral:
            raise ConfigError(f"{key} does not apply to supernet training (it optimises by hand): use {instead}")
    if str(_get(cfg, "trainer.precision")) in ("16", "16-mixed"):
        # manual optimisation: Lightning unscales fp16 gradients only inside opt.step(), so the
        # clipping and the finiteness check of the step would see scaled gradients
        raise ConfigError(
            f"trainer.precision={_get(cfg, 'trainer.precision')} is not supported (the step clips and checks "
            "gradients by hand, before Lightning would unscale them): use bf16-mixed or 32-true"
        )
    if _get(cfg, "sampler.num_random") is not None:
        _number(cfg, "sampler.num_random", low=0, integer=True)

    space = SearchSpace.from_dict(OmegaConf.to_container(cfg.space, resolve=True))
    children = OmegaConf.to_container(cfg.validation.children, resolve=True)
    if not children:
        raise ConfigError("validation.children is empty: name at least one child (e.g. [max, min])")
    for name, spec in child_names(children).items():
        try:
            space.resolve(spec)
        except ValueError as err:
            raise ConfigError(f"validation.children: {name}={spec!r}: {err}") from None
    if _get(cfg, "sampler.arch") is not None:
        try:
            space.resolve(_get(cfg, "sampler.arch"))
        except ValueError as err:
            raise ConfigError(f"sampler.arch={_get(cfg, 'sampler.arch')!r}: {err}") from None

    target = str(_get(cfg, "data._target_") or "")
    root = _get(cfg, "data.root")
    if root is None and target.endswith(("ImageFolderDataModule", "CIFARDataModule")):
        raise ConfigError(f"data.root is required for {target.rsplit('.', 1)[-1]} (the folder holding the data)")
    if root is not None and not _get(cfg, "data.download") and not Path(root).is_dir():
        raise ConfigError(f"data.root={root!r} does not exist (for {target.rsplit('.', 1)[-1]})")
    if target.endswith("ImageFolderDataModule"):
        for split in ("train", "val"):
            if not (Path(root) / split).is_dir():
                raise ConfigError(f"data.root={root!r} has no '{split}' folder (ImageNet layout: root/train, root/val)")
    _build_checked_parts(cfg, space)
