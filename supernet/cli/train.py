"""``supernet-train``: train a supernet (Hydra app over ``conf/train.yaml``).

supernet-train                                   # quickstart: tiny space on digits, CPU
supernet-train experiment=bignas_cifar10 data.root=/data/cifar
supernet-train trainer.max_epochs=3 sampler.num_random=3
supernet-train -m seed=0,1,2                     # sweep
supernet-train hydra.run.dir=runs/a ckpt_path=auto   # resume runs/a if it has a checkpoint, else start it

A run folder that holds a run is never started over silently: without ``ckpt_path`` the command
refuses it (``overwrite=true`` replaces it). A resumed run appends to its ``logs/metrics.csv``.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, USER_ERRORS, RunFolder, debugging, exit_with_one_line, plain, user_errors
from supernet.cli.config_errors import one_line_config_errors


def build_module(cfg: DictConfig, num_classes: int, in_chans: int, data_sampler=None):
    from hydra.utils import instantiate

    from supernet.space import SearchSpace
    from supernet.training import SupernetModule

    space = SearchSpace.from_dict(plain(cfg.space))
    model = cfg.model
    distill = instantiate(cfg.distill) if cfg.distill.get("_target_") else None
    fewshot = instantiate(cfg.fewshot) if cfg.fewshot.get("_target_") else None
    return SupernetModule(
        space,
        num_classes,
        in_chans,
        model_kwargs=plain(model.kwargs),
        sampler=instantiate(cfg.sampler),
        data_sampler=data_sampler,
        distill=distill,
        label_smoothing=model.label_smoothing,
        optimizer=instantiate({k: v for k, v in plain(model.optimizer).items() if v is not None}),
        weight_decay=model.weight_decay,
        schedule=plain(model.schedule),
        grad_clip=plain(model.grad_clip),
        accumulate=model.accumulate,
        seed=cfg.seed,
        on_nonfinite=model.on_nonfinite,
        check_arch_sync=model.check_arch_sync,
        channels_last=model.channels_last,
        sync_batchnorm=bool(cfg.trainer.get("sync_batchnorm", False)),
        fewshot=fewshot,
    )


def build_trainer(cfg: DictConfig, output_dir: Path, **overrides: Any):
    """The Trainer with the configured callbacks, child validation (``cfg.validation``) and loggers."""
    from hydra.utils import instantiate

    os.environ.setdefault("WANDB_MODE", "offline")
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks.append(instantiate(cfg.validation, children=plain(cfg.validation.children)))
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(output_dir), **overrides
    )


# What a training run writes into its folder (conf/callbacks, conf/logger): what overwrite=true removes.
RUN_OUTPUTS = ("checkpoints", "logs", "tensorboard")


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) a training run: a checkpoint or the metrics log."""
    return any((run_dir / "checkpoints").glob("*.ckpt")) or (run_dir / "logs" / "metrics.csv").is_file()


def check_run_folder(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse, before any work, to start a new run in a folder that holds one, naming the folder
    and the ways on. ``ckpt_path=auto`` resumes from ``checkpoints/last.ckpt`` when there is one;
    a folder with only the logs of a start that saved no checkpoint is started afresh."""
    ckpt_path, overwrite = cfg.get("ckpt_path"), bool(cfg.get("overwrite", False))
    if overwrite and ckpt_path is not None:
        raise ValueError(f"overwrite=true starts a new run: it cannot be combined with ckpt_path={ckpt_path}")
    if ckpt_path not in (None, "auto") or overwrite or not holds_run(run_dir):
        return
    checkpoints = any((run_dir / "checkpoints").glob("*.ckpt"))
    if ckpt_path == "auto" and ((run_dir / "checkpoints" / "last.ckpt").is_file() or not checkpoints):
        return
    raise FileExistsError(
        f"{run_dir} already holds a run: continue it with ckpt_path=last, start another with "
        "hydra.run.dir=<another folder>, or replace it with overwrite=true"
    )


class TrainRunFolder(RunFolder):
    """``RunFolder`` of ``supernet-train``: the run folder check runs before Hydra writes its
    ``.hydra/`` into the folder, so a refused command leaves the old run exactly as it was."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_run_folder(config, Path(str(config.hydra.run.dir)).absolute())
        except USER_ERRORS as err:
            if debugging(config.get("debug", False)):
                raise
            exit_with_one_line(err)
        super().on_run_start(config, **kwargs)


def clear_run_folder(run_dir: Path) -> None:
    """Remove what a previous run wrote (``RUN_OUTPUTS``), for a new run in its folder."""
    for name in RUN_OUTPUTS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def keep_history(trainer) -> None:
    """Make the CSV logger of a resumed run append to its ``metrics.csv``. Lightning's logger
    deletes the file it finds when it opens its folder, so the file is moved aside while the
    logger opens and given back with its columns; the logger then appends the new rows (and
    rewrites the file whole, old rows included, when a new column appears)."""
    from lightning.pytorch.loggers import CSVLogger

    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        file = Path(logger.log_dir) / "metrics.csv"
        aside = file.with_name(f"{file.name}.resuming")
        if aside.is_file() and not file.is_file():  # a resume killed between the two renames below
            os.replace(aside, file)
        if not file.is_file():
            continue
        with file.open(newline="") as f:
            columns = next(csv.reader(f), [])
        os.replace(file, aside)
        with warnings.catch_warnings():  # "Previous log files in this directory will be deleted": not so
            warnings.filterwarnings("ignore", message="Experiment logs directory")
            writer = logger.experiment
        os.replace(aside, file)
        writer.metrics_keys = columns


def resolve_ckpt(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from, checked before any work: it exists, is a readable
    checkpoint (never unpickled: ``weights_only``), and was written by supernet-train.
    ``auto``: ``checkpoints/last.ckpt`` when it exists, else none (a new run)."""
    from supernet.child import read_checkpoint

    if ckpt_path == "auto":
        last = output_dir / "checkpoints" / "last.ckpt"
        ckpt_path = "last" if last.is_file() else None
    if ckpt_path is None:
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = " (ckpt_path=last resumes the run in hydra.run.dir=<its folder>)" if ckpt_path == "last" else ""
        raise FileNotFoundError(f"checkpoint not found: {path}{hint}")
    read_checkpoint(path)  # memory-mapped: the check costs little
    return str(path)


def print_summary(rows: list[dict[str, Any]], output_dir: Path, not_evaluated: dict[str, str]) -> None:
    """The final table; a split in ``not_evaluated`` (split -> why) gets a line instead of a column."""
    from rich.console import Console
    from rich.table import Table

    splits = [split for split in ("val", "test") if split not in not_evaluated]
    table = Table(title="validation children (BN recalibrated)")
    for col in ("child", "arch", "MMACs", "params (M)", *(f"{split} acc" for split in splits)):
        table.add_column(
            col, justify="left" if col in ("child", "arch") else "right", overflow="fold", no_wrap=col != "arch"
        )
    for r in rows:
        table.add_row(
            r["child"],
            r["arch"],
            f"{r['mmacs']:.2f}",
            f"{r['params_m']:.3f}",
            *(f"{r[f'{split}_acc']:.4f}" for split in splits),
        )
    console = Console()
    console.print(table)
    for split, why in not_evaluated.items():
        console.print(f"{split} acc:     not evaluated ({why})")
    console.print(f"checkpoints: {output_dir / 'checkpoints'}")
    console.print(f"logs:        {output_dir / 'logs'}  (config: {output_dir / '.hydra'})")


def stopped_by_signal(trainer, last, output_dir: Path, stop: SystemExit) -> int | None:
    """The exit code of a run that a signal stopped (128 + the signal's number, as a shell reports
    it), after a line saying what was saved and how to continue; None when no signal stopped it."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    received = getattr(last, "signal_received", None)
    signum = received or (signal.SIGTERM if isinstance(stop, SIGTERMException) else None)
    if signum is None:
        return None
    if trainer.is_global_zero:
        name = signal.Signals(signum).name
        if last is not None and last.saved_step == trainer.global_step:
            what = f"step {trainer.global_step} saved in {last.path}"
        elif last is not None and last.path.is_file():
            what = f"nothing saved at the signal, {last.path} holds an earlier step"
        else:
            print(f"{name}: training stopped, no checkpoint saved", file=sys.stderr)
            return 128 + signum
        print(
            f"{name}: training stopped, {what}; continue with the same command and "
            f"hydra.run.dir={output_dir} ckpt_path=last (or ckpt_path=auto)",
            file=sys.stderr,
        )
    return 128 + signum


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train as configured; returns the summary rows (also printed)."""
    import lightning.pytorch as pl
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from supernet.cli.validation import validate_train_config
    from supernet.sampling import PadaDataSampler
    from supernet.training import ChildValidation, LastCheckpoint

    validate_train_config(cfg)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    check_run_folder(cfg, output_dir)
    ckpt_path = resolve_ckpt(cfg.get("ckpt_path"), output_dir)
    if ckpt_path is None and holds_run(output_dir) and rank_zero_only.rank == 0:
        clear_run_folder(output_dir)  # overwrite=true, or ckpt_path=auto over a start that saved nothing
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    if cfg.get("data_sampler"):
        datamodule.train_sampler = instantiate(cfg.data_sampler)(num_samples=len(datamodule.train_set), seed=cfg.seed)
    learned = datamodule.train_sampler if isinstance(datamodule.train_sampler, PadaDataSampler) else None
    module = build_module(cfg, datamodule.num_classes, datamodule.in_chans, data_sampler=learned)
    trainer = build_trainer(cfg, output_dir)
    if ckpt_path is not None and trainer.is_global_zero:
        keep_history(trainer)
    last = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as stop:  # Lightning's exit on SIGTERM (and our Ctrl-C), or on a second Ctrl-C
        code = stopped_by_signal(trainer, last, output_dir, stop)
        if code is None:
            raise
        raise SystemExit(code) from None
    validation = next(c for c in trainer.callbacks if isinstance(c, ChildValidation))
    if validation.evaluated_at.get("val") != trainer.global_step:
        # The run ended between two validations (on trainer.max_steps), or a finished run was
        # resumed with nothing left to train: the table shows the final weights.
        trainer.validate(module, datamodule=datamodule, verbose=False)
    if cfg.get("test_after_fit", True):
        trainer.test(module, datamodule=datamodule, verbose=False)
    rows = validation.summary_rows(module)
    if trainer.is_global_zero:
        not_evaluated = {}
        if "val" not in validation.evaluated_at:
            not_evaluated["val"] = "no validation batches: trainer.limit_val_batches"
        if "test" not in validation.evaluated_at:
            not_evaluated["test"] = "test_after_fit=false"
        print_summary(rows, output_dir, not_evaluated)
    return {"rows": rows, "output_dir": str(output_dir), "module": module, "trainer": trainer}


def compose(overrides: list[str], output_dir: str | Path, config_name: str = "train") -> DictConfig:
    """The composed config of ``supernet-train <overrides>``, with its run directory set to
    ``output_dir`` (for notebooks, benchmarks and tests that train without the command line)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_PATH):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def train(overrides: list[str], output_dir: str | Path) -> dict[str, Any]:
    """Run ``supernet-train <overrides>`` in this process, writing into ``output_dir``."""
    return run(compose(overrides, output_dir))


@one_line_config_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
