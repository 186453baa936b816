"""PA&DA importance sampling of paths (CVPR 2023), adapted to elastic spaces.

One categorical distribution per searchable dimension (resolution, stem, head, and width/depth/
kernel/expand of every stage) draws the sampled children: the random slots of the sandwich
(``PadaPathSampler``: max and min stay fixed) or the one child of single-path training
(``PadaSinglePathSampler``, the paper's own SPOS setting). A value's importance ``G`` is read
from the per-child, per-stage gradient statistics that the training step measures for the
sampled children (``StepResult.grad_stats``, see ``supernet.training.step.GradientProbe``), by
one of three rules (``importance``):

- ``child_norm`` (default, the paper's rule): the raw gradient norm of the whole child,
  credited to every value the child used. ``p ∝ ||grad||`` is the variance-minimising sampling
  rule; a value that activates more weights is meant to weigh more.
- ``stage_norm`` (a heuristic): for a stage's dimensions the raw gradient norm of that stage's
  weights, for global dimensions the whole child's.
- ``stage_rms`` (a heuristic, the first build's rule): the root-mean-square gradient over the
  stage's *active* weights, ``||g_stage|| / sqrt(n_active)``. It steers toward small children.

Estimates: moving average with factor ``ema`` (0.5, as in the authors' code), reset when the
distribution is updated. Update (every epoch as in the paper, or every ``update_every`` steps):
``p = tau * G / sum(G) + (1 - tau) / K`` with ``tau`` following ``tau_schedule`` (linear:
``tau = e / E`` after epoch ``e`` (0-based) of ``E``, as the reference code: the first update is
a no-op and tau never reaches 1), then ``p = max(p, floor)`` renormalised (``floor`` keeps every
value reachable: parameter-free choices collect no gradient). Under ``torch.distributed`` each
rank measures the gradients of its own shard (before the step's all-reduce), and the estimates
are averaged across ranks at each update, so every rank keeps the same distribution (one small
all-reduce per update instead of one per child and step).

Only steps that are applied count: a step refused for non-finite values never reaches the sampler.
The statistics are those of each child's own loss (the step divides out delayed shrinking's
``grad_scale`` and the accumulation scale), so a value drawn early in a ramp is not judged
unimportant for its scaled-down gradient.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from supernet.distributed import masked_mean_over_ranks
from supernet.sampling.arch_samplers import SandwichSampler, StepInfo, UniformSampler
from supernet.sampling.step_result import StepResult
from supernet.space import Arch, SearchSpace

IMPORTANCE_RULES = ("child_norm", "stage_norm", "stage_rms")


def tau_at(schedule: str, epoch: int, max_epochs: int) -> float:
    """Weight of the measured importance in the update after ``epoch`` (0-based) of ``max_epochs``."""
    if schedule == "linear":
        return min(1.0, epoch / max(max_epochs, 1))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"sampler.tau_schedule must be 'linear' or 'constant', got {schedule!r}")


class PadaPaths:
    """The learned path distribution, mixed into an arch sampler whose ``draw`` it replaces."""

    measures_gradients = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        ema: float = 0.5,
        update_every: int | None = None,
        tau_schedule: str = "linear",
        floor: float = 0.0,
        importance: str = "child_norm",
        **sampler_options: Any,
    ):
        super().__init__(space, seed, **sampler_options)
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"sampler.ema must be in [0, 1), got {ema}")
        if update_every is not None and update_every <= 0:
            raise ValueError(f"sampler.update_every must be a positive number of steps or null, got {update_every}")
        if importance not in IMPORTANCE_RULES:
            raise ValueError(f"sampler.importance must be one of {list(IMPORTANCE_RULES)}, got {importance!r}")
        tau_at(tau_schedule, 0, 1)  # validates the name
        self.ema, self.update_every, self.tau_schedule = ema, update_every, tau_schedule
        self.importance = importance
        self.dims = space.dimensions
        if any(floor * len(d.choices) > 1.0 for d in self.dims) or floor < 0:
            raise ValueError(f"sampler.floor={floor} is impossible: floor * number of choices must be <= 1")
        self.floor = floor
        self.probs = [[1.0 / len(d.choices)] * len(d.choices) for d in self.dims]
        self._reset_estimates()
        self._updates = 0

    def _reset_estimates(self) -> None:
        self.estimates = [[0.0] * len(d.choices) for d in self.dims]
        self.seen = [[0] * len(d.choices) for d in self.dims]

    # -- drawing ------------------------------------------------------------------------------
    def draw(self, generator: random.Random) -> Arch:
        values = {}
        for dim, probs in zip(self.dims, self.probs):
            values[dim] = generator.choices(dim.choices, weights=probs)[0]
        return self.space.with_values(self.space.max(), values)

    # -- learning from a step ------------------------------------------------------------------
    def _importances(self, stats: torch.Tensor) -> list[float]:
        """The importance of this child's value of every dimension, from its gradient statistics."""
        sq, count = stats.cpu().tolist()
        n = self.space.num_stages
        if self.importance == "stage_rms":
            stage = [math.sqrt(s / c) if c else 0.0 for s, c in zip(sq, count)]
            child = math.sqrt(sum(sq) / sum(count)) if sum(count) else 0.0
        else:
            stage, child = [math.sqrt(s) for s in sq], math.sqrt(sum(sq))
        if self.importance == "child_norm":
            return [child] * len(self.dims)
        return [child if dim.stage is None else stage[min(dim.stage, n)] for dim in self.dims]

    def on_step_end(self, info: StepInfo, result: StepResult) -> None:
        for child in result.children:
            if not child.sampled or child.grad_scale <= 0 or child.name not in result.grad_stats:
                continue
            for k, (dim, importance) in enumerate(zip(self.dims, self._importances(result.grad_stats[child.name]))):
                i = dim.choices.index(self.space.value(child.arch, dim))
                old = self.estimates[k][i]
                self.estimates[k][i] = (
                    importance if self.seen[k][i] == 0 else self.ema * old + (1 - self.ema) * importance
                )
                self.seen[k][i] += 1
        if self.update_every and (info.step + 1) % self.update_every == 0:
            self.update(min(1.0, max(info.progress, 0.0)) if self.tau_schedule == "linear" else 1.0)

    # -- updating -----------------------------------------------------------------------------
    def _synced_estimates(self) -> list[list[float]]:
        """The estimates averaged over the ranks that measured each value."""
        flat = torch.tensor([v for row in self.estimates for v in row], dtype=torch.float64)
        seen = torch.tensor([s > 0 for row in self.seen for s in row])
        mean = masked_mean_over_ranks(flat, seen).tolist()
        out, pos = [], 0
        for row in self.estimates:
            out.append(mean[pos : pos + len(row)])
            pos += len(row)
        return out

    def update(self, tau: float) -> dict[str, float]:
        estimates = self._synced_estimates()
        for k, dim in enumerate(self.dims):
            total = sum(estimates[k])
            K = len(dim.choices)
            measured = [g / total for g in estimates[k]] if total > 0 else [1.0 / K] * K
            probs = [tau * m + (1 - tau) / K for m in measured]
            if self.floor > 0:
                probs = [max(p, self.floor) for p in probs]
            s = sum(probs)
            self.probs[k] = [p / s for p in probs]
        self._reset_estimates()
        self._updates += 1
        return self.summary()

    def on_epoch_end(self, epoch: int, max_epochs: int) -> dict[str, float]:
        if self.update_every:
            return self.summary()
        return self.update(tau_at(self.tau_schedule, epoch, max_epochs))

    def summary(self) -> dict[str, float]:
        """Entropy (nats), most likely value and probability of every value of each dimension
        (``pada/<dim>/p<value>``: what the analysis notebook draws as heatmaps over epochs)."""
        out = {}
        for dim, probs in zip(self.dims, self.probs):
            if len(probs) > 1:
                out[f"pada/{dim.key}/entropy"] = -sum(p * math.log(p) for p in probs if p > 0)
                out[f"pada/{dim.key}/top"] = float(dim.choices[max(range(len(probs)), key=probs.__getitem__)])
                out.update({f"pada/{dim.key}/p{value}": p for value, p in zip(dim.choices, probs)})
        return out

    def distributions(self) -> dict[str, dict[float, float]]:
        return {d.key: dict(zip(d.choices, p)) for d, p in zip(self.dims, self.probs)}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "probs": [list(p) for p in self.probs],
            "estimates": [list(e) for e in self.estimates],
            "seen": [list(s) for s in self.seen],
            "updates": self._updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if [len(p) for p in state["probs"]] != [len(d.choices) for d in self.dims]:
            raise ValueError("PA&DA sampler state does not match the search space's dimensions")
        self.probs = [list(map(float, p)) for p in state["probs"]]
        self.estimates = [list(map(float, e)) for e in state["estimates"]]
        self.seen = [list(map(int, s)) for s in state["seen"]]
        self._updates = int(state["updates"])


class PadaPathSampler(PadaPaths, SandwichSampler):
    """The sandwich with PA&DA-drawn random children (``sampler=sandwich_pada``)."""


class PadaSinglePathSampler(PadaPaths, UniformSampler):
    """Single-path training with a PA&DA-drawn child per step, on labels (``sampler=spos_pada``):
    the paper's setting."""
