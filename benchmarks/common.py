"""Small helpers shared by the benchmark scripts (timing, machine description, results table)."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    return median_times([fn], repeats, warmup)[0]


def median_times(fns: list[Callable[[], object]], repeats: int, warmup: int = 3) -> list[float]:
    """Median wall time of each of ``fns``, measured interleaved (a, b, a, b, ...) so that drifts
    of the machine (frequency, other load) hit every candidate alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    sync()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


class StepTimer(pl.Callback):
    """Wall time (device-synchronised) and children of every training step."""

    def __init__(self):
        self.times, self.children, self._start = [], [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        sync()
        self.times.append(time.perf_counter() - self._start)
        self.children.append(list(pl_module.last_children))


def timing_trainer(steps: int, callbacks=(), accelerator: str = "auto", precision: str = "32-true") -> pl.Trainer:
    """A bare Trainer for timing training steps: no validation, logging, checkpoints or bars."""
    return pl.Trainer(accelerator=accelerator, devices=1, max_steps=steps, precision=precision, limit_val_batches=0,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=list(callbacks))


QUIET = ["callbacks.progress=null", "trainer.enable_progress_bar=false", "callbacks.checkpoint=null",
         "callbacks.last_checkpoint=null"]


def run_training(overrides: list[str]) -> dict:
    """``supernet-train`` in this process, in a temporary run directory, without progress bars."""
    import tempfile

    from supernet.cli.train import train

    with tempfile.TemporaryDirectory() as tmp:
        return train([*QUIET, "test_after_fit=false", *overrides], tmp)


def children_override(archs: list[str]) -> str:
    """Hydra override that validates exactly ``archs`` (named child0, child1, ...)."""
    return "validation.children=[" + ", ".join(f"'{a}'" for a in archs) + "]"


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
