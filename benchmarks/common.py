"""Small helpers shared by the benchmark scripts (step timing, machine description, results table).
Timing a function: ``supernet.metrics.latency.median_times``."""

from __future__ import annotations

import platform
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils import benchmark


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"
    )


class StepTimer(pl.Callback):
    """Wall time and children of every training step, read on ``torch.utils.benchmark``'s clock
    (which synchronises the accelerator first, so a step's queued kernels are counted in it)."""

    def __init__(self):
        self.times, self.children, self._start = [], [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = benchmark.timer()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.times.append(benchmark.timer() - self._start)
        self.children.append(list(outputs["step"].children))


def timing_trainer(steps: int, callbacks=(), accelerator: str = "auto", precision: str = "32-true") -> pl.Trainer:
    """A bare Trainer for timing training steps: no validation, logging, checkpoints or bars."""
    return pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=steps,
        precision=precision,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


QUIET = [
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint=null",
    "callbacks.last_checkpoint=null",
]


def run_training(overrides: list[str]) -> dict:
    """``supernet-train`` in this process, in a temporary run directory, without progress bars."""
    import tempfile

    from supernet.cli.train import train

    with tempfile.TemporaryDirectory() as tmp:
        return train([*QUIET, "test_after_fit=false", *overrides], tmp)


def composed_config(overrides: list[str]):
    """The training config ``overrides`` compose (as ``supernet-train`` would), with nothing written
    outside a temporary directory."""
    import tempfile

    from supernet.cli.train import compose

    with tempfile.TemporaryDirectory() as tmp:
        return compose(overrides, tmp)


def children_override(archs: list[str]) -> str:
    """Hydra override that validates exactly ``archs`` (named child0, child1, ...)."""
    return "validation.children=[" + ", ".join(f"'{a}'" for a in archs) + "]"


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def train_with_snapshots(overrides: list[str], epochs: int) -> tuple[list, object, object]:
    """Train ``epochs`` epochs (validated once, at the end) with a checkpoint after every epoch.

    Returns the supernet after each epoch (``LoadedSupernet``: weights, and in ``meta`` the
    samplers' state, i.e. the distributions the *next* epoch draws from), the composed config and
    the set-up data module."""
    import tempfile

    from hydra.utils import instantiate

    from supernet.child.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        snapshots = Path(tmp) / "snapshots"
        run_training(
            [
                *overrides,
                f"trainer.max_epochs={epochs}",
                f"trainer.check_val_every_n_epoch={epochs}",
                "callbacks.periodic_checkpoint={_target_:lightning.pytorch.callbacks.ModelCheckpoint,"
                f"dirpath:'{snapshots}',every_n_epochs:1,save_top_k:-1,save_on_train_epoch_end:true}}",
            ]
        )
        after = [load_checkpoint(next(snapshots.glob(f"epoch={e}-*.ckpt"))) for e in range(epochs)]
    cfg = composed_config([*overrides, f"trainer.max_epochs={epochs}"])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return after, cfg, datamodule
