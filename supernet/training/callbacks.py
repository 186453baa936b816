"""``LastCheckpoint``: the resumable ``checkpoints/last.ckpt``; ``LatestRunLink``: the
``outputs/train/latest`` pointer to the newest run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from supernet.training.step import DivergenceError


class LastCheckpoint(pl.Callback):
    """``<dirpath>/<filename>.ckpt``: at the end of every epoch, also every ``every_n_train_steps``
    steps when set, at the end of training, and when training is interrupted (SIGTERM from a
    scheduler, Ctrl-C, a crash) — but not when the run diverged: that state is the one that
    produced the non-finite values, so the previous checkpoint is kept instead.

    Written on Lightning's public ``trainer.save_checkpoint`` (an atomic write): its
    ``ModelCheckpoint`` takes either a step or an epoch trigger, and a resumable ``last.ckpt``
    wants both, plus the save at a batch boundary on a signal (below).

    Signals, with ``save_on_exception``: SIGTERM makes Lightning stop after the current batch, and
    this callback saves at that batch's end, with the loader's position, so the resume is exact.
    Ctrl-C (SIGINT) is turned into the same request while fitting: the first one stops after the
    current step and saves; a second one stops at once and saves nothing, because a checkpoint
    taken inside a step does not resume exactly. ``signal_received`` names the signal that
    stopped the run (None when none did).
    """

    def __init__(
        self,
        dirpath: str | Path,
        filename: str = "last",
        every_n_train_steps: int | None = None,
        save_on_exception: bool = True,
    ):
        if every_n_train_steps is not None and every_n_train_steps <= 0:
            raise ValueError(
                f"callbacks.last_checkpoint.every_n_train_steps must be a positive number of steps "
                f"or null, got {every_n_train_steps}"
            )
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.every_n_train_steps = every_n_train_steps
        self.save_on_exception = save_on_exception
        self.signal_received: signal.Signals | None = None
        self.saved_step: int | None = None  # the global step of the last save of this process
        self._previous_sigint = None  # the SIGINT handler ours replaced, while fitting
        self._pid = os.getpid()  # the process that installed it

    def _save(self, trainer: pl.Trainer) -> None:
        """Save once per optimizer step, while fitting (never in a sanity check or a fast dev run)."""
        if (
            trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or trainer.fast_dev_run
            or self.saved_step == trainer.global_step
        ):
            return
        trainer.save_checkpoint(self.path)
        self.saved_step = trainer.global_step

    # -- Ctrl-C: the first one asks for what SIGTERM does, the second one stops at once ----------
    def _on_sigint(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # A data loader worker forked with this handler: a terminal's Ctrl-C reaches it too. It
            # carries on serving batches; the main process stops the run after the step.
            return
        if self.signal_received is None:
            self.signal_received = signal.SIGINT
            # os.write: a print here could re-enter a print the handler interrupted
            os.write(2, b"\nCtrl-C: stopping after this step, which is saved (Ctrl-C again: stop now, save nothing)\n")
            # Lightning's own SIGTERM handler records the request (on every rank under DDP) and its
            # loops stop at the next batch boundary, where ``on_train_batch_end`` saves.
            signal.raise_signal(signal.SIGTERM)
        else:
            raise KeyboardInterrupt

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Signal handlers can only be set from the main thread (not, e.g., from a worker thread).
        if stage == "fit" and self.save_on_exception and threading.current_thread() is threading.main_thread():
            self._pid = os.getpid()
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _restore_sigint(self) -> None:
        # Only while ours is installed: on a KeyboardInterrupt Lightning ignores further Ctrl-C
        # during its shutdown, and that must stay so.
        if signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, self._previous_sigint)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._restore_sigint()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        every = self.every_n_train_steps
        if trainer.received_sigterm and self.signal_received is None:
            self.signal_received = signal.SIGTERM
        # A signal: Lightning stops after this batch. Saving here, at the batch boundary with the
        # loader's position, makes the resume exact; ``on_exception`` then sees this step saved.
        if (every and trainer.global_step % every == 0) or (trainer.received_sigterm and self.save_on_exception):
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_sigint()
        if trainer.received_sigterm and self.signal_received is None:  # during validation, say
            self.signal_received = signal.SIGTERM
        if isinstance(exception, KeyboardInterrupt):
            if self.signal_received is None:  # Ctrl-C outside our handler's reach (not the main thread)
                self.signal_received = signal.SIGINT
            if trainer.is_global_zero:
                kept = f"; {self.path} is the latest checkpoint" if self.path.exists() else ""
                print(f"stopped inside a step: nothing saved{kept}", file=sys.stderr)
            return
        if self.save_on_exception and not isinstance(exception, DivergenceError):
            self._save(trainer)


class LatestRunLink(pl.Callback):
    """``link`` (``outputs/train/latest``): a symbolic link to ``run_dir``, replaced atomically
    when training starts (so only by a run that got as far as training), on the main process.
    Written only for a run folder inside the working directory: a run elsewhere (a test's
    temporary folder, a scratch disk) leaves the pointer to the runs of this tree alone."""

    def __init__(self, link: str | Path, run_dir: str | Path):
        self.link, self.run_dir = Path(link).absolute(), Path(run_dir).absolute()

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not self.run_dir.is_relative_to(Path.cwd()):
            return
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            # relative, so the tree can be moved or mounted elsewhere
            tmp.symlink_to(os.path.relpath(self.run_dir, self.link.parent), target_is_directory=True)
            os.replace(tmp, self.link)
        except OSError as err:  # a convenience: never the reason a run fails (a folder in its place, ...)
            tmp.unlink(missing_ok=True)
            rank_zero_warn(f"{self.link} not pointed at this run: {err}")
