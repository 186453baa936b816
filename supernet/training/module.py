"""``SupernetModule``: one sandwich step per batch (manual optimisation), child validation.

Step (BigNAS): zero grads; for each child of the arch sampler: set the arch, resize the batch to
its resolution, forward, loss (teacher: label-smoothed CE with dropout/drop-path on; others:
distillation from the teacher's detached logits), backward — gradients accumulate (summed by
default, as the reference code does). Then clip, one optimizer step, one LR-schedule step.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from supernet.child.calibration import BNState, bn_state, calibrate_bn, load_bn_state
from supernet.child.checkpoint import CHECKPOINT_KEY
from supernet.losses import LabelSmoothingCE
from supernet.models import build
from supernet.ops import ElasticBatchNorm2d, resize_to
from supernet.sampling import ArchSampler, Child, PadaDataSampler, SandwichSampler, StepInfo, sample_scores
from supernet.space import Arch, SearchSpace
from supernet.training.schedules import lr_factor


class DivergenceError(FloatingPointError):
    """A child produced a non-finite loss or gradient (the optimizer step was not applied)."""


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only, never on norm parameters or biases (BigNAS), nor
    on what the model's ``no_weight_decay()`` names (ViT: position embedding, class token)."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 and name not in skip else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def child_names(specs: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """Name the validation children: a mapping keeps its names; in a list, ``max``/``min``/``mid``
    name themselves, ``random:<seed>`` becomes ``random<seed>`` and arch strings ``child<i>``."""
    if isinstance(specs, Mapping):
        return {str(k): v for k, v in specs.items()}
    names = {}
    for i, spec in enumerate(specs):
        spec = str(spec)
        name = spec if spec in ("max", "min", "mid") else spec.replace(":", "") if spec.startswith("random:") else f"child{i}"
        if name in names:
            raise ValueError(f"validation.children lists {spec!r} twice")
        names[name] = spec
    return names


class SupernetModule(pl.LightningModule):
    def __init__(
        self,
        space: SearchSpace,
        num_classes: int,
        in_chans: int,
        *,
        model_kwargs: Mapping[str, Any] | None = None,
        sampler: Callable[..., ArchSampler] | None = None,
        distill: nn.Module | None = None,
        label_smoothing: float = 0.1,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        weight_decay: float = 1e-5,
        schedule: Mapping[str, Any] | None = None,
        grad_clip: Mapping[str, Any] | None = None,
        accumulate: str = "sum",
        val_children: Mapping[str, str] | Sequence[str] | None = None,
        calib_batches: int = 8,
        seed: int = 0,
        on_nonfinite: str = "stop",
        check_arch_sync: bool = False,
        channels_last: bool = False,
    ):
        super().__init__()
        self.automatic_optimization = False
        if accumulate not in ("sum", "mean"):
            raise ValueError(f"model.accumulate must be 'sum' or 'mean', got {accumulate!r}")
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"model.on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
        self.space, self.num_classes, self.in_chans = space, num_classes, in_chans
        self.model_kwargs = dict(model_kwargs or {})
        self.supernet = build(space, num_classes, in_chans, **self.model_kwargs)
        self.sampler = (sampler or SandwichSampler)(space=space, seed=seed)
        self.criterion = LabelSmoothingCE(label_smoothing)
        self.distill = distill
        self.optimizer_factory = optimizer or (lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True))
        self.weight_decay = weight_decay
        self.schedule = dict(schedule or {"name": "cosine"})
        self.grad_clip = dict(grad_clip or {})
        self.accumulate, self.seed, self.on_nonfinite = accumulate, seed, on_nonfinite
        self.check_arch_sync = check_arch_sync
        self.channels_last = channels_last
        if channels_last:
            self.supernet.to(memory_format=torch.channels_last)
        self.calib_batches = calib_batches
        specs = child_names(val_children or ["max", "min"])
        self.val_children: dict[str, Arch] = {name: space.resolve(spec) for name, spec in specs.items()}
        metrics = lambda: MetricCollection({"acc": MulticlassAccuracy(num_classes, average="micro")})  # noqa: E731
        self.val_metrics = nn.ModuleDict({n: metrics() for n in self.val_children})
        self.test_metrics = nn.ModuleDict({n: metrics() for n in self.val_children})
        self.val_losses = nn.ModuleDict({n: MeanMetric() for n in self.val_children})
        self.test_losses = nn.ModuleDict({n: MeanMetric() for n in self.val_children})
        self._schedule_fn: Callable[[int], float] | None = None
        self._schedule_total = 0  # optimizer steps of the whole run (LR schedule, shrinking progress)
        self._schedule_epochs = 1  # epochs of the whole run (PA&DA's tau = e / E)
        self._bn_states: dict[str, BNState] = {}  # calibrated statistics of each validation child
        self._training_bn: BNState | None = None  # the training statistics, while validation replaces them
        self.results: dict[str, dict[str, float]] = {n: {} for n in self.val_children}
        self.last_children: list[Child] = []
        self.sampler.attach(self.supernet)

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

    def _configure_schedule(self) -> None:
        trainer = self.trainer
        per_epoch = int(trainer.num_training_batches)
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        max_steps = trainer.max_steps if trainer.max_steps is not None and trainer.max_steps > 0 else None
        if max_epochs is None and max_steps is None:
            raise ValueError("set trainer.max_epochs or trainer.max_steps: the LR schedule needs the run's length")
        total = min(per_epoch * max_epochs if max_epochs else math.inf, max_steps or math.inf)
        self._schedule_total = int(total)
        self._schedule_epochs = max(math.ceil(total / per_epoch), 1)
        sched = dict(self.schedule)
        warmup_epochs = float(sched.pop("warmup_epochs", 0.0))
        self._schedule_fn = lr_factor(
            sched.pop("name", "cosine"), total, warmup_steps=int(warmup_epochs * per_epoch),
            steps_per_epoch=per_epoch, **sched,
        )
        scheduler = self.lr_schedulers()
        for group, base in zip(self.optimizers().optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * self._schedule_fn(scheduler.last_epoch)

    def _distributed(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1 and dist.is_initialized()

    def _no_sync(self):
        """Every backward runs without DDP's gradient hooks; ``_sync_gradients`` reduces once per step."""
        model = getattr(self.trainer.strategy, "model", None) if self._trainer is not None else None
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    def _finite_after_sync(self, losses: Mapping[str, torch.Tensor]) -> bool:
        """Average the accumulated gradients of all children across ranks in ONE all-reduce of a
        flat buffer, with this rank's "something is not finite" flag appended; True when every
        loss and gradient on every rank is finite. One host sync per step.

        Done by hand instead of by DDP's reducer: DDP would either synchronise on every child's
        backward, or (with ``no_sync`` on all but the last) treat the weights that only earlier
        children used as unused and leave their gradients unsynchronised."""
        grads = [p.grad for p in self.supernet.parameters() if p.grad is not None]
        total = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=self.device)
        local_bad = (~torch.isfinite(torch.stack([*losses.values(), total.to(self.device)]))).any().float()
        if not self._distributed():
            return not bool(local_bad)
        flat = torch.cat([g.reshape(-1) for g in grads] + [local_bad.reshape(1).to(grads[0].dtype)])
        dist.all_reduce(flat)
        world = self.trainer.world_size
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g)).div_(world)
            offset += n
        return not bool(flat[-1] > 0)

    def _assert_same_children(self, children: list[Child]) -> None:
        """``check_arch_sync``: all-gather a hash of this step's children and compare."""
        digest = hashlib.sha1("|".join(str(c.arch) + c.role for c in children).encode()).digest()
        local = torch.tensor([int.from_bytes(digest[:7], "big")], dtype=torch.long, device=self.device)
        gathered = [torch.zeros_like(local) for _ in range(self.trainer.world_size)]
        dist.all_gather(gathered, local)
        if any(int(g) != int(local) for g in gathered):
            raise RuntimeError(
                f"ranks train different children at step {self.global_step} (rank {self.global_rank}: "
                f"{[str(c.arch) for c in children]}); the arch sampler must draw from (seed, step) only"
            )

    def _child_loss(self, child: Child, logits: torch.Tensor, y: torch.Tensor,
                    teacher_logits: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        if child.role == "teacher" or teacher_logits is None or self.distill is None:
            per_sample = self.criterion(logits, y)
        else:
            per_sample = self.distill(logits, teacher_logits)
        return per_sample.mean() if weights is None else (per_sample * weights).sum()

    def _mean_rank_sum(self, local_sum: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a per-rank sum (``local_sum`` on one process). Importance weights
        divided by it sum to the per-rank batch size on average, so the loss is normalised by the
        weights of the *global* batch and DDP computes what one process computes on that batch."""
        if not self._distributed():
            return local_sum
        total = local_sum.detach().clone()
        dist.all_reduce(total)
        return total / self.trainer.world_size

    @property
    def data_sampler(self) -> PadaDataSampler | None:
        """The PA&DA data sampler of the datamodule, when training uses one."""
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        sampler = getattr(dm, "train_sampler", None)
        return sampler if isinstance(sampler, PadaDataSampler) else None

    def _progress(self) -> float:
        total = self._schedule_total or 1
        return min(self.global_step / total, 1.0)

    def _scorer(self, x: torch.Tensor, y: torch.Tensor):
        """Loss of each arch on this batch, no gradients, averaged across ranks (attentive sampler)."""

        @torch.no_grad()
        def score(archs):
            losses = []
            for arch in archs:
                self.supernet.set_arch(arch)
                logits = self.supernet(self._input(x, arch.resolution))
                losses.append(nn.functional.cross_entropy(logits, y))
            stacked = torch.stack(losses)
            if self.trainer.world_size > 1:
                stacked = self.trainer.strategy.reduce(stacked, reduce_op="mean")
            return stacked.tolist()

        return score

    def _input(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        x = resize_to(x, resolution)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def training_step(self, batch, batch_idx: int):
        x, y, indices = batch[0], batch[1], batch[2]
        data_sampler = self.data_sampler
        weights = data_sampler.weights(indices) if data_sampler is not None else None
        if weights is not None:
            weights = weights / self._mean_rank_sum(weights.sum())
        step = self.global_step
        # Dropout / drop-path masks from (seed, step): a resumed run draws the same masks.
        torch.manual_seed(self.seed * 1_000_003 + step)
        info = StepInfo(step, self.current_epoch, self._schedule_epochs, self._progress(),
                        self._scorer(x, y))
        children = self.sampler.children(info)
        self.last_children = children
        if self.check_arch_sync and self._distributed():
            self._assert_same_children(children)
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        scale = 1.0 if self.accumulate == "sum" else 1.0 / len(children)
        teacher_logits = None
        losses, scores = {}, []
        for child in children:
            self.supernet.set_arch(child.arch)
            self.sampler.begin_child(child)
            with self._no_sync(), self.supernet.regularization(child.role == "teacher"):
                logits = self.supernet(self._input(x, child.arch.resolution))
                loss = self._child_loss(child, logits, y, teacher_logits, weights)
                # A non-finite loss is not checked here (that would wait for the GPU once per
                # child): its gradients are non-finite too and the step is refused below.
                self.manual_backward(loss * (scale * child.grad_scale))
            self.sampler.end_child(child)
            distilled = child.role != "teacher" and teacher_logits is not None and self.distill is not None
            if data_sampler is not None:
                scores.append(sample_scores(logits, y, teacher_logits if distilled else None))
            if child.role == "teacher":
                teacher_logits = logits.detach()
            losses[child.name] = loss.detach()
        if not self._finite_after_sync(losses):
            bad = [f"{n} ({c.arch})" for (n, v), c in zip(losses.items(), children) if not torch.isfinite(v)]
            self._nonfinite(f"loss of child {bad[0]}" if bad else "loss or gradient (maybe on another rank)", step, opt)
            return self._end_of_epoch(batch_idx)
        clip = self.grad_clip
        if clip.get("value"):
            self.clip_gradients(opt, gradient_clip_val=clip["value"], gradient_clip_algorithm=clip.get("algorithm", "value"))
        opt.step()
        self.lr_schedulers().step()
        if data_sampler is not None:
            data_sampler.update_scores(indices, torch.stack(scores).mean(0))
        self.sampler.on_step_end(info)
        for name, value in losses.items():
            self.log(f"train/{name}/loss", value, on_step=True, on_epoch=False, prog_bar=name == "max")
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, on_epoch=False)
        return self._end_of_epoch(batch_idx)

    def _end_of_epoch(self, batch_idx: int) -> None:
        """The samplers' epoch-end updates, inside the last training step of the epoch: before any
        ``on_train_batch_end`` hook, so a checkpoint saved at that batch (periodic, or on SIGTERM)
        already holds the updated distributions, as an uninterrupted run would have them."""
        if batch_idx + 1 != self.trainer.num_training_batches:
            return None
        epoch, epochs = self.current_epoch, self._schedule_epochs
        logs = dict(self.sampler.on_epoch_end(epoch, epochs))
        if self.data_sampler is not None:
            logs.update(self.data_sampler.on_epoch_end(epoch, epochs))
        if logs:
            self.log_dict(logs, on_step=False, on_epoch=True)
        return None

    def _nonfinite(self, what: str, step: int, opt) -> None:
        message = f"non-finite {what} at step {step}"
        opt.zero_grad(set_to_none=True)
        if self.on_nonfinite == "stop":
            raise DivergenceError(
                f"{message}; the optimizer step was not applied. Lower the learning rate "
                "(model.optimizer.lr) or enable clipping (model.grad_clip.value)"
            )
        self.print(f"warning: {message}; step skipped (model.on_nonfinite=skip)")
        self.lr_schedulers().step()
        return None

    # -- validation / test: fixed children, BN recalibrated ---------------------------------------
    def _calibrate_children(self) -> None:
        # Calibration overwrites the BN buffers; the training statistics come back at the end of
        # validation, so training and checkpoints never depend on when validation ran.
        if self._training_bn is None:
            self._training_bn = bn_state(self.supernet)
        dm = self.trainer.datamodule
        loader = dm.calibration_dataloader()
        self._bn_states = {
            name: calibrate_bn(self.supernet, loader, self.calib_batches, arch=arch)
            for name, arch in self.val_children.items()
        }

    def on_validation_epoch_start(self) -> None:
        self._calibrate_children()

    def on_test_epoch_start(self) -> None:
        self._calibrate_children()

    def _eval_step(self, batch, metrics: nn.ModuleDict, losses: nn.ModuleDict) -> None:
        x, y = batch[0], batch[1]
        for name, arch in self.val_children.items():
            load_bn_state(self.supernet, self._bn_states[name])
            self.supernet.set_arch(arch)
            logits = self.supernet(self._input(x, arch.resolution))
            metrics[name].update(logits, y)
            losses[name].update(nn.functional.cross_entropy(logits, y), weight=y.numel())

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, self.val_losses)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, self.test_losses)

    def _eval_epoch_end(self, split: str, metrics: nn.ModuleDict, losses: nn.ModuleDict) -> None:
        for name in self.val_children:
            acc = metrics[name].compute()["acc"]
            loss = losses[name].compute()
            self.log(f"{split}/{name}/acc", acc, prog_bar=name in ("max", "min"), sync_dist=False)
            self.log(f"{split}/{name}/loss", loss, sync_dist=False)
            self.results[name][f"{split}_acc"] = float(acc)
            self.results[name][f"{split}_loss"] = float(loss)
            metrics[name].reset()
            losses[name].reset()

    def _restore_training_bn(self) -> None:
        if self._training_bn is not None:
            load_bn_state(self.supernet, self._training_bn)
            self._training_bn = None

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val", self.val_metrics, self.val_losses)
        self._restore_training_bn()

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test", self.test_metrics, self.test_losses)
        self._restore_training_bn()

    # -- checkpoints ---------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._training_bn is not None:  # saved during validation (a signal, an exception)
            checkpoint["state_dict"].update({f"supernet.{k}": v for k, v in self._training_bn.items()})
        checkpoint[CHECKPOINT_KEY] = {
            "space": self.space.to_dict(),
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "model_kwargs": self.model_kwargs,
            "val_children": {n: str(a) for n, a in self.val_children.items()},
            "sampler": self.sampler.state_dict(),
        }
        if self.data_sampler is not None:
            checkpoint[CHECKPOINT_KEY]["data_sampler"] = self.data_sampler.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get(CHECKPOINT_KEY)
        if meta is None:
            raise ValueError("this checkpoint was not written by supernet (no 'supernet' entry)")
        if SearchSpace.from_dict(meta["space"]) != self.space:
            raise ValueError(
                f"checkpoint space {meta['space'].get('name')!r} differs from the configured space "
                f"{self.space.name!r}; resume with the same space= as the run that wrote it"
            )
        self.sampler.load_state_dict(meta["sampler"])
        if "data_sampler" in meta and self.data_sampler is not None:
            self.data_sampler.load_state_dict(meta["data_sampler"])

    def on_train_start(self) -> None:
        self._configure_schedule()

    def setup(self, stage: str) -> None:
        # ``Trainer(sync_batchnorm=True)`` converts only torch's BatchNorm classes; the elastic BN
        # synchronises its statistics itself when asked to, so honour the flag here.
        if getattr(self.trainer.strategy, "_layer_sync", None) is not None:
            for module in self.supernet.modules():
                if isinstance(module, ElasticBatchNorm2d):
                    module.sync_group = True

    def summary_rows(self) -> list[dict[str, Any]]:
        """Rows of the final table: arch, multiply-adds, params, val/test accuracy per child."""
        rows = []
        for name, arch in self.val_children.items():
            c = self.supernet.complexity(arch)
            rows.append({"child": name, "arch": str(arch), "mmacs": c.macs / 1e6, "params_m": c.params / 1e6,
                         **{k: self.results[name].get(k, math.nan) for k in ("val_acc", "val_loss", "test_acc", "test_loss")}})
        return rows
