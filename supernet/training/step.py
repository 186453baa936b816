"""The sandwich step as plain code: no Lightning, no Hydra.

One step (BigNAS): for each child, activate it, resize the batch to its resolution, forward, loss
(the teacher: label-smoothed CE with dropout/drop-path on; the others: distillation from the
teacher's detached logits), backward — gradients accumulate (summed by default, as the reference
code does). Then one all-reduce of all gradients with the finiteness flag (``supernet.distributed``).
The caller (``SupernetModule``) owns the optimizer: it clips and steps when the result is finite,
and hands the ``StepResult`` to the samplers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn

from supernet.distributed import mean_over_ranks, sync_gradients
from supernet.models import Supernet
from supernet.ops import resize_to
from supernet.ops.slicing import on_gradient
from supernet.sampling import Child, StepResult, sample_scores
from supernet.space import Arch


def normalise_over_global_batch(weights: torch.Tensor) -> torch.Tensor:
    """Per-sample loss weights divided by their mean sum over ranks (one all-reduce), so that
    ``(per_sample * weights).sum()`` on each rank, averaged over ranks as DDP averages gradients,
    is the weighted mean over the global batch: what one process computes on that batch."""
    return weights / mean_over_ranks(weights.sum())


class DivergenceError(FloatingPointError):
    """A child produced a non-finite loss or gradient (the optimizer step was not applied)."""


class GradientProbe:
    """Per-stage sum of squared gradient entries and count of non-zero entries of one backward
    pass, for samplers that learn from gradients (PA&DA).

    Observers on the parameters (``supernet.ops.slicing.on_gradient``) see the gradient of each
    backward pass before it is accumulated into ``.grad``, so no copy of the gradients is made;
    they cost nothing while the probe is off.
    ``model.parameter_stages()`` says which stage owns a parameter; the rest (stem, head,
    classifier) goes to the last column.
    """

    def __init__(self, model: nn.Module, num_stages: int):
        stages = model.parameter_stages() if hasattr(model, "parameter_stages") else {}
        self._stats = torch.zeros(2, num_stages + 1, dtype=torch.float64)
        self._recording = False
        for param in model.parameters():
            stage = stages.get(param)
            on_gradient(param, self._hook(num_stages if stage is None else stage))

    def _hook(self, column: int):
        def hook(grad: torch.Tensor) -> None:
            if self._recording:
                if self._stats.device != grad.device:
                    self._stats = self._stats.to(grad.device)
                self._stats[0, column] += grad.detach().double().square().sum()
                self._stats[1, column] += (grad != 0).sum()

        return hook

    def start(self) -> None:
        """Record the backward passes from now on, from zero."""
        self._stats.zero_()
        self._recording = True

    def stop(self) -> torch.Tensor:
        """Stop recording; the ``(2, num_stages + 1)`` statistics recorded since ``start``."""
        self._recording = False
        return self._stats.clone()


class SandwichStep:
    """Runs the children of one step on a batch and returns a ``StepResult``.

    ``backward`` runs a loss's backward (``Tensor.backward`` by default; the LightningModule
    passes ``manual_backward`` so precision plugins apply); ``no_sync`` is a context factory that
    keeps a data-parallel wrapper from synchronising on each child's backward (the gradients are
    all-reduced once, at the end). ``probe`` measures the gradients of the children a sampler
    learns from; ``score_samples`` computes the PA&DA data scores.
    """

    def __init__(
        self,
        model: Supernet,
        criterion: nn.Module,
        distill: nn.Module | None = None,
        *,
        accumulate: str = "sum",
        channels_last: bool = False,
        probe: GradientProbe | None = None,
        score_samples: bool = False,
        backward: Callable[[torch.Tensor], None] | None = None,
        no_sync: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        if accumulate not in ("sum", "mean"):
            raise ValueError(f"model.accumulate must be 'sum' or 'mean', got {accumulate!r}")
        self.model, self.criterion, self.distill = model, criterion, distill
        self.accumulate, self.channels_last = accumulate, channels_last
        self.probe, self.score_samples = probe, score_samples
        self.backward = backward or torch.Tensor.backward
        self.no_sync = no_sync

    def inputs(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        x = resize_to(x, resolution)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.no_grad()
    def score(self, x: torch.Tensor, y: torch.Tensor, archs: Sequence[Arch]) -> list[float]:
        """Cross-entropy of each arch on this batch, no gradients, averaged across ranks (the same
        list on every rank): what the attentive sampler ranks its candidates by."""
        losses = []
        for arch in archs:
            self.model.set_arch(arch)
            losses.append(nn.functional.cross_entropy(self.model(self.inputs(x, arch.resolution)), y))
        return mean_over_ranks(torch.stack(losses)).tolist()

    def child_loss(
        self,
        child: Child,
        logits: torch.Tensor,
        y: torch.Tensor,
        teacher_logits: torch.Tensor | None,
        weights: torch.Tensor | None,
    ) -> torch.Tensor:
        if child.role == "teacher" or teacher_logits is None or self.distill is None:
            per_sample = self.criterion(logits, y)
        else:
            per_sample = self.distill(logits, teacher_logits)
        return per_sample.mean() if weights is None else (per_sample * weights).sum()

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, children: Sequence[Child], weights: torch.Tensor | None = None
    ) -> StepResult:
        """Forward and backward every child (gradients accumulate from zero), then synchronise the
        gradients across ranks. ``weights`` are per-sample importance weights (PA&DA), normalised
        here by their mean sum over ranks, so the loss is normalised over the *global* batch and
        data-parallel training computes what one process computes on that batch."""
        self.model.zero_grad(set_to_none=True)
        if weights is not None:
            weights = normalise_over_global_batch(weights)
        # mean: divide by the children's total weight, so that the max child's gradient scale stays
        # continuous when delayed shrinking brings the other children in with a ramped grad_scale
        scale = 1.0 if self.accumulate == "sum" else 1.0 / sum(child.grad_scale for child in children)
        teacher_logits = None
        losses, logits_of, grad_stats, scores = {}, {}, {}, []
        for child in children:
            self.model.set_arch(child.arch)
            measure = self.probe is not None and child.sampled and child.grad_scale > 0
            if measure:
                self.probe.start()
            with self.no_sync(), self.model.regularization(child.role == "teacher"):
                logits = self.model(self.inputs(x, child.arch.resolution))
                loss = self.child_loss(child, logits, y, teacher_logits, weights)
                # A non-finite loss is not checked here (that would wait for the GPU once per
                # child): its gradients are non-finite too and the step is refused below.
                self.backward(loss * (scale * child.grad_scale))
            if measure:  # statistics of the child's own loss: the scaling divided out
                stats = self.probe.stop()
                stats[0] /= (scale * child.grad_scale) ** 2
                grad_stats[child.name] = stats
            distilled = child.role != "teacher" and teacher_logits is not None and self.distill is not None
            if self.score_samples:
                scores.append(sample_scores(logits, y, teacher_logits if distilled else None))
            if child.role == "teacher":
                teacher_logits = logits.detach()
            losses[child.name] = loss.detach()
            logits_of[child.name] = logits.detach()
        return StepResult(
            children=list(children),
            losses=losses,
            logits=logits_of,
            finite=self._sync(losses),
            grad_stats=grad_stats,
            sample_scores=torch.stack(scores).mean(0) if scores else None,
        )

    def _sync(self, losses: dict[str, torch.Tensor]) -> bool:
        """Average the accumulated gradients across ranks (one all-reduce); True when every loss
        and gradient on every rank is finite."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        device = next(iter(losses.values())).device
        total = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=device)
        local_bad = (~torch.isfinite(torch.stack([*losses.values(), total.to(device)]))).any().float()
        return sync_gradients(grads, local_bad)
