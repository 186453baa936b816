"""``SupernetModule``: a thin LightningModule over the plain sandwich step (``training/step.py``).

It owns what Lightning owns — the optimizer and LR schedule, the call to the step under manual
optimisation, logging and the checkpoint metadata — and wires the samplers to the step: the arch
sampler chooses the children, the step runs them, and an applied step's ``StepResult`` goes
back to the samplers. Child validation is the ``ChildValidation`` callback's
(``training/validation.py``). With ``fewshot`` the supernet is a ``SupernetCollection`` that the
``SplitSchedule`` splits at its configured steps (``supernet.fewshot``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from supernet.checkpoint_format import CHECKPOINT_KEY
from supernet.distributed import derive_seed, is_distributed, same_on_every_rank
from supernet.fewshot import SplitSchedule, SupernetCollection
from supernet.losses import LabelSmoothingCE
from supernet.models import build
from supernet.ops import ElasticBatchNorm2d
from supernet.sampling import ArchSampler, Child, PadaDataSampler, SandwichSampler, StepInfo, StepResult
from supernet.space import SearchSpace
from supernet.training.schedules import lr_factor
from supernet.training.step import DivergenceError, GradientProbe, SandwichStep


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only, never on norm parameters or biases (BigNAS), nor
    on what the model's ``no_weight_decay()`` names (ViT: position embedding, class token)."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 and name not in skip else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class SupernetModule(pl.LightningModule):
    """``data_sampler``: the training set's PA&DA sampler when training uses one (its weights and
    scores are exchanged with the step here; its state goes into the checkpoint). ``fewshot``:
    train a collection of ``fewshot.splits + 1`` sub-supernets split by gradient matching (None:
    one supernet, one-shot)."""

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int,
        in_chans: int,
        *,
        model_kwargs: Mapping[str, Any] | None = None,
        sampler: Callable[..., ArchSampler] | None = None,
        data_sampler: PadaDataSampler | None = None,
        distill: nn.Module | None = None,
        label_smoothing: float = 0.1,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        weight_decay: float = 1e-5,
        schedule: Mapping[str, Any] | None = None,
        grad_clip: Mapping[str, Any] | None = None,
        accumulate: str = "sum",
        seed: int = 0,
        on_nonfinite: str = "stop",
        check_arch_sync: bool = False,
        channels_last: bool = False,
        sync_batchnorm: bool = False,
        fewshot: SplitSchedule | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"model.on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
        self.space, self.num_classes, self.in_chans = space, num_classes, in_chans
        self.model_kwargs = dict(model_kwargs or {})
        self.fewshot = fewshot
        if fewshot is None:
            self.supernet = build(space, num_classes, in_chans, **self.model_kwargs)
        else:
            fewshot.check(space)
            self.supernet = SupernetCollection(space, num_classes, in_chans, fewshot.splits + 1, **self.model_kwargs)
        if channels_last:
            self.supernet.to(memory_format=torch.channels_last)
        if sync_batchnorm:
            # ``Trainer(sync_batchnorm=True)`` converts only torch's BatchNorm classes; the elastic
            # BN synchronises its statistics itself when asked to.
            for module in self.supernet.modules():
                if isinstance(module, ElasticBatchNorm2d):
                    module.sync_group = True
        self.sampler = (sampler or SandwichSampler)(space=space, seed=seed)
        self.data_sampler = data_sampler
        self.criterion, self.distill = LabelSmoothingCE(label_smoothing), distill  # registered: moved with the module
        self.step = SandwichStep(
            self.supernet,
            self.criterion,
            self.distill,
            accumulate=accumulate,
            channels_last=channels_last,
            score_samples=data_sampler is not None,
            probe=GradientProbe(self.supernet, space.num_stages) if self.sampler.measures_gradients else None,
            backward=self.manual_backward,
            no_sync=self._no_sync,
        )
        self.optimizer_factory = optimizer or (
            lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
        )
        self.weight_decay = weight_decay
        self.schedule = dict(schedule or {"name": "cosine"})
        self.grad_clip = dict(grad_clip or {})
        self.seed, self.on_nonfinite, self.check_arch_sync = seed, on_nonfinite, check_arch_sync
        self._schedule_fn: Callable[[int], float] | None = None
        self._schedule_total = 0  # optimizer steps of the whole run (LR schedule, shrinking progress)
        self._schedule_epochs = 1  # epochs of the whole run (PA&DA's tau = e / E)
        self._split_steps: list[int] = []  # the global step before which each few-shot split comes

    def inputs(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        """The batch as a child of ``resolution`` takes it (resized, in the configured memory format)."""
        return self.step.inputs(x, resolution)

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(param_groups(self.supernet, self.weight_decay))
        # The schedule's length is known only once the data is set up (``on_train_start``); asking
        # ``trainer.estimated_stepping_batches`` here would set the train loader up before a
        # checkpoint's loader state is restored and break exact mid-epoch resume.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _lr_factor(self, step: int) -> float:
        return 1.0 if self._schedule_fn is None else self._schedule_fn(step)

    def on_train_start(self) -> None:
        trainer = self.trainer
        per_epoch = int(trainer.num_training_batches)
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        max_steps = trainer.max_steps if trainer.max_steps is not None and trainer.max_steps > 0 else None
        if max_epochs is None and max_steps is None:
            raise ValueError("set trainer.max_epochs or trainer.max_steps: the LR schedule needs the run's length")
        total = min(per_epoch * max_epochs if max_epochs else math.inf, max_steps or math.inf)
        self._schedule_total = int(total)
        self._schedule_epochs = max(math.ceil(total / per_epoch), 1)
        if self.fewshot is not None:
            self._split_steps = self.fewshot.split_steps(per_epoch, self._schedule_total)
        sched = dict(self.schedule)
        warmup_epochs = float(sched.pop("warmup_epochs", 0.0))
        self._schedule_fn = lr_factor(
            sched.pop("name", "cosine"),
            total,
            warmup_steps=int(warmup_epochs * per_epoch),
            steps_per_epoch=per_epoch,
            **sched,
        )
        scheduler = self.lr_schedulers()
        for group, base in zip(self.optimizers().optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * self._schedule_fn(scheduler.last_epoch)

    def _no_sync(self):
        """Every backward runs without DDP's gradient hooks: the step reduces once per step."""
        model = self.trainer.strategy.model
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    def _step_info(self) -> StepInfo:
        progress = min(self.global_step / (self._schedule_total or 1), 1.0)
        return StepInfo(self.global_step, self.current_epoch, self._schedule_epochs, progress)

    def _check_same_children(self, children: list[Child]) -> None:
        """``check_arch_sync``: compare a hash of this step's children across ranks."""
        digest = hashlib.sha1("|".join(str(c.arch) + c.role for c in children).encode()).digest()
        if not same_on_every_rank(int.from_bytes(digest[:7], "big")):
            raise RuntimeError(
                f"ranks train different children at step {self.global_step} (rank {self.global_rank}: "
                f"{[str(c.arch) for c in children]}); the arch sampler must draw from (seed, step) only"
            )

    def training_step(self, batch, batch_idx: int) -> dict[str, StepResult]:
        """One sandwich step; returns ``{"step": StepResult}`` (callbacks see it as ``outputs``)."""
        x, y, indices = batch[0], batch[1], batch[2]
        info = self._step_info()
        self._split_when_due()
        # Dropout / drop-path masks from (seed, step): a resumed run draws the same masks.
        torch.manual_seed(derive_seed(self.seed, "regularization", info.step))
        candidates = self.sampler.candidates(info)
        children = self.sampler.children(info, self.step.score(x, y, candidates) if candidates else None)
        if self.check_arch_sync and is_distributed():
            self._check_same_children(children)
        weights = self.data_sampler.weights(indices) if self.data_sampler is not None else None
        result = self.step(x, y, children, weights)
        opt = self.optimizers()
        if result.finite:
            self._apply_step(result, opt, info, indices)
        else:
            self._refuse_step(result, opt, info.step)
        self._end_of_epoch(batch_idx)
        return {"step": result}

    def _split_when_due(self) -> None:
        """Make the next few-shot split once its step has come (the splits a resumed checkpoint
        records count as made: they are not made again)."""
        done = len(self.supernet.splits) if self.fewshot is not None else 0
        if done >= len(self._split_steps) or self.global_step < self._split_steps[done]:
            return
        loader = self.trainer.datamodule.calibration_dataloader()  # fixed training batches, sharded across ranks
        made = self.fewshot.split(self.supernet, self.optimizers().optimizer, loader, self.global_step)
        keep, hand_over = made.split.groups
        self.print(
            f"few-shot split {done + 1} at step {self.global_step}: sub-supernet {made.parent} keeps "
            f"{made.split.dimension} in {list(keep)}, sub-supernet {made.child} takes {list(hand_over)} "
            f"(mean similarity across the cut {made.split.cut:.4f})"
        )

    def _apply_step(self, result: StepResult, opt, info: StepInfo, indices: torch.Tensor) -> None:
        clip = self.grad_clip
        if clip.get("value"):
            self.clip_gradients(
                opt, gradient_clip_val=clip["value"], gradient_clip_algorithm=clip.get("algorithm", "value")
            )
        opt.step()
        self.lr_schedulers().step()
        if self.data_sampler is not None:
            self.data_sampler.update_scores(indices, result.sample_scores)
        self.sampler.on_step_end(info, result)
        for name, value in result.losses.items():
            self.log(f"train/{name}/loss", value, on_step=True, on_epoch=False, prog_bar=name == "max")
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, on_epoch=False)

    def _refuse_step(self, result: StepResult, opt, step: int) -> None:
        bad = [f"{c.name} ({c.arch})" for c in result.children if not torch.isfinite(result.losses[c.name])]
        what = f"loss of child {bad[0]}" if bad else "loss or gradient (maybe on another rank)"
        message = f"non-finite {what} at step {step}"
        opt.zero_grad(set_to_none=True)
        if self.on_nonfinite == "stop":
            raise DivergenceError(
                f"{message}; the optimizer step was not applied. Lower the learning rate "
                "(model.optimizer.lr) or enable clipping (model.grad_clip.value)"
            )
        self.print(f"warning: {message}; step skipped (model.on_nonfinite=skip)")
        self.lr_schedulers().step()

    def _end_of_epoch(self, batch_idx: int) -> None:
        """The samplers' epoch-end updates, inside the last training step of the epoch: before any
        ``on_train_batch_end`` hook, so a checkpoint saved at that batch (periodic, or on SIGTERM)
        already holds the updated distributions, as an uninterrupted run would have them."""
        if batch_idx + 1 != self.trainer.num_training_batches:
            return
        epoch, epochs = self.current_epoch, self._schedule_epochs
        logs = dict(self.sampler.on_epoch_end(epoch, epochs))
        if self.data_sampler is not None:
            logs.update(self.data_sampler.on_epoch_end(epoch, epochs))
        if logs:
            self.log_dict(logs, on_step=False, on_epoch=True)

    # -- validation / test: the ChildValidation callback evaluates the children -------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        """Nothing here: ``ChildValidation.on_validation_batch_end`` evaluates every child."""

    def test_step(self, batch, batch_idx: int) -> None:
        """Nothing here: ``ChildValidation.on_test_batch_end`` evaluates every child."""

    # -- checkpoints ---------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.setdefault(CHECKPOINT_KEY, {})
        meta.update(
            {
                "space": self.space.to_dict(),
                "num_classes": self.num_classes,
                "in_chans": self.in_chans,
                "model_kwargs": self.model_kwargs,
                "sampler": self.sampler.state_dict(),
            }
        )
        if self.data_sampler is not None:
            meta["data_sampler"] = self.data_sampler.state_dict()
        if self.fewshot is not None:
            meta["fewshot"] = self.supernet.state()
        datamodule = getattr(self._trainer, "datamodule", None)
        if hasattr(datamodule, "search_split"):  # which training images a child search may score on
            meta["search_split"] = datamodule.search_split()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get(CHECKPOINT_KEY)
        if meta is None:
            raise ValueError("this checkpoint was not written by supernet (no 'supernet' entry)")
        if SearchSpace.from_dict(meta["space"]) != self.space:
            raise ValueError(
                f"checkpoint space {meta['space'].get('name')!r} differs from the configured space "
                f"{self.space.name!r}; resume with the same space= as the run that wrote it"
            )
        if (self.fewshot is None) != ("fewshot" not in meta):
            trained = "a few-shot collection (fewshot=gradient_matching)" if "fewshot" in meta else "one supernet"
            raise ValueError(f"the checkpoint holds {trained}: resume with the fewshot= of the run that wrote it")
        if self.fewshot is not None:
            self.supernet.load_state(meta["fewshot"])
        self.sampler.load_state_dict(meta["sampler"])
        if "data_sampler" in meta and self.data_sampler is not None:
            self.data_sampler.load_state_dict(meta["data_sampler"])
