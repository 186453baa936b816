"""Training callbacks."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from supernet.training.module import DivergenceError


class LastCheckpoint(ModelCheckpoint):
    """``checkpoints/last.ckpt``: at the end of every epoch, also every ``every_n_train_steps``
    steps when set, at the end of training, and when training is interrupted (SIGTERM from a
    scheduler, a crash) — but not when the run diverged: that state is the one that produced the
    non-finite values, so the previous checkpoint is kept instead.

    Lightning's ``ModelCheckpoint`` takes either a step or an epoch trigger; a resumable
    ``last.ckpt`` wants both, so the epoch-end and end-of-training saves are added here.
    """

    def __init__(self, *args, every_n_train_steps: int | None = None, **kwargs):
        kwargs.pop("every_n_epochs", None)
        super().__init__(*args, every_n_train_steps=every_n_train_steps,
                         every_n_epochs=None if every_n_train_steps else 1, **kwargs)
        self._by_steps = bool(every_n_train_steps)

    def _save_if_new(self, trainer) -> None:
        if self._by_steps and not trainer.sanity_checking and self._last_global_step_saved != trainer.global_step:
            self._save_checkpoint(trainer, self.format_checkpoint_name(self._monitor_candidates(trainer)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # SIGTERM: Lightning stops after this batch (SIGTERMException). Saving here, where the
        # periodic checkpoints are saved, makes the resume exact; ``on_exception`` then sees
        # this step saved and writes nothing more.
        if trainer.received_sigterm and self.save_on_exception and self._last_global_step_saved != trainer.global_step:
            self._save_checkpoint(trainer, self.format_checkpoint_name(self._monitor_candidates(trainer)))

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_if_new(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_if_new(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, DivergenceError):
            return
        super().on_exception(trainer, pl_module, exception)
