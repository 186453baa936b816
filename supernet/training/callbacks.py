"""``LastCheckpoint``: the resumable ``checkpoints/last.ckpt``."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn

from supernet.training.step import DivergenceError


class LastCheckpoint(pl.Callback):
    """``<dirpath>/<filename>.ckpt``: at the end of every epoch, also every ``every_n_train_steps``
    steps when set, at the end of training, and when training is interrupted (SIGTERM from a
    scheduler, a crash) — but not when the run diverged: that state is the one that produced the
    non-finite values, so the previous checkpoint is kept instead.

    Written on Lightning's public ``trainer.save_checkpoint`` (an atomic write): its
    ``ModelCheckpoint`` takes either a step or an epoch trigger, and a resumable ``last.ckpt``
    wants both, plus the SIGTERM save at a batch boundary (below).
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
        self._saved_step: int | None = None

    def _save(self, trainer: pl.Trainer) -> None:
        """Save once per optimizer step, while fitting (never in a sanity check or a fast dev run)."""
        if (
            trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or trainer.fast_dev_run
            or self._saved_step == trainer.global_step
        ):
            return
        trainer.save_checkpoint(self.path)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        every = self.every_n_train_steps
        # SIGTERM: Lightning stops after this batch. Saving here, at the batch boundary with the
        # loader's position, makes the resume exact; ``on_exception`` then sees this step saved.
        if (every and trainer.global_step % every == 0) or (trainer.received_sigterm and self.save_on_exception):
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.save_on_exception and not isinstance(exception, DivergenceError):
            self._save(trainer)
