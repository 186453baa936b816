"""Who is trained each step: the children of one optimizer step.

Every random draw comes from a generator seeded with ``(seed, global_step)``: every rank draws the
same children with no communication, and a resumed run draws what an uninterrupted run would.
Samplers that learn (PA&DA, attentive) keep their state in ``state_dict`` (plain types only).

The protocol, as the training loop uses it at every step:

1. ``candidates(info)``: archs to score on the current batch before choosing (attentive
   sampling); the step scores them without gradients, identically on every rank.
2. ``children(info, candidate_losses)``: the children of this step.
3. the step runs; when it is applied (all finite), ``on_step_end(info, result)`` hands the
   sampler the ``StepResult`` — losses, logits and, when ``measures_gradients`` is set, the
   gradient statistics of the ``sampled`` children. A refused step reaches no sampler.
4. ``on_epoch_end(epoch, max_epochs)`` inside the epoch's last step: update learned state.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supernet.distributed import derive_seed
from supernet.space import Arch, SearchSpace

if TYPE_CHECKING:
    from supernet.sampling.step_result import StepResult


@dataclass(frozen=True)
class Child:
    """One child of a step. ``role='teacher'`` learns from labels with dropout/drop-path on and
    provides the soft targets; ``'student'`` learns from the teacher (or labels when there is none).
    ``grad_scale`` multiplies its loss (delayed shrinking ramps it). ``sampled`` marks a child
    drawn from the sampler's distribution (not a fixed max/min): what PA&DA learns from."""

    arch: Arch
    role: str
    name: str
    grad_scale: float = 1.0
    sampled: bool = False


@dataclass(frozen=True)
class StepInfo:
    """Where training is: what a sampler may use to choose the children of one step."""

    step: int
    epoch: int = 0
    max_epochs: int = 1
    progress: float = 0.0  # fraction of the training done, in [0, 1]


def step_generator(seed: int, step: int, stream: str = "arch") -> random.Random:
    return random.Random(derive_seed(seed, stream, step))


class ArchSampler:
    """Base class of the protocol above: ``children(info)`` lists the children of one step."""

    measures_gradients = False  # True: the step measures the gradients of the sampled children

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space, self.seed = space, seed

    def candidates(self, info: StepInfo) -> list[Arch]:
        """Archs whose losses on this batch ``children`` needs (none by default)."""
        return []

    def children(self, info: StepInfo, candidate_losses: Sequence[float] | None = None) -> list[Child]:
        raise NotImplementedError

    def draw(self, generator: random.Random) -> Arch:
        """One random child (uniform over each dimension; PA&DA overrides this)."""
        return self.space.sample(generator)

    def on_step_end(self, info: StepInfo, result: StepResult) -> None:
        """Learn from an applied step."""

    def on_epoch_end(self, epoch: int, max_epochs: int) -> dict[str, float]:
        """Update learned state; returns scalars to log."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])


class UniformSampler(ArchSampler):
    """One uniformly random child per step, trained on labels (single-path one-shot training)."""

    def children(self, info: StepInfo, candidate_losses: Sequence[float] | None = None) -> list[Child]:
        return [Child(self.draw(step_generator(self.seed, info.step)), "student", "random0", sampled=True)]


class FixedSampler(ArchSampler):
    """Always the same child, trained on labels: stand-alone training of one arch (baselines)."""

    def __init__(self, space: SearchSpace, seed: int = 0, arch: str = "max"):
        super().__init__(space, seed)
        self.arch = space.resolve(arch)

    def children(self, info: StepInfo, candidate_losses: Sequence[float] | None = None) -> list[Child]:
        return [Child(self.arch, "teacher", "fixed")]


class DelayedShrinking:
    """DεpS (ECCV 2024): train only the largest child until ``start`` (fraction of training), then
    sandwich training with the other children's gradients scaled by a factor ramped linearly from
    0 to ``multiplier`` over ``warmup`` (fraction of training)."""

    def __init__(self, start: float = 0.5, warmup: float = 0.05, multiplier: float = 1.0):
        if not (0.0 <= start < 1.0 and warmup >= 0.0 and multiplier > 0.0):
            raise ValueError(
                f"sampler.shrinking needs 0 <= start < 1, warmup >= 0 and multiplier > 0; got "
                f"start={start}, warmup={warmup}, multiplier={multiplier}"
            )
        self.start, self.warmup, self.multiplier = start, warmup, multiplier

    def scale(self, progress: float) -> float:
        """Gradient scale of the non-max children; 0 means: train the max child only."""
        if progress < self.start:
            return 0.0
        if self.warmup == 0.0:
            return self.multiplier
        return self.multiplier * min(1.0, (progress - self.start) / self.warmup)


def _shrinking(value: DelayedShrinking | Mapping | None) -> DelayedShrinking | None:
    if value is None or isinstance(value, DelayedShrinking):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"sampler.shrinking={value!r} must be null or a mapping {{start, warmup, multiplier}}")
    unknown = sorted(set(value) - {"start", "warmup", "multiplier"})
    if unknown:
        raise ValueError(f"sampler.shrinking has unknown keys {unknown}: use start, warmup, multiplier")
    return DelayedShrinking(**value)


class SandwichSampler(ArchSampler):
    """BigNAS sandwich rule: the largest child (teacher), ``num_random`` random children, the smallest.

    ``shrinking`` (a ``DelayedShrinking`` or its keyword dict) trains only the largest child early on.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        num_random: int = 2,
        shrinking: DelayedShrinking | Mapping | None = None,
    ):
        super().__init__(space, seed)
        if num_random < 0:
            raise ValueError(f"sampler.num_random must be >= 0, got {num_random}")
        self.num_random = num_random
        self.shrinking = _shrinking(shrinking)
        self._max, self._min = space.max(), space.min()

    def shrinking_scale(self, info: StepInfo) -> float:
        """Gradient scale of the non-max children at this step (0: the max child trains alone)."""
        return 1.0 if self.shrinking is None else self.shrinking.scale(info.progress)

    def random_children(self, info: StepInfo, candidate_losses: Sequence[float] | None) -> list[Arch]:
        generator = step_generator(self.seed, info.step)
        return [self.draw(generator) for _ in range(self.num_random)]

    def children(self, info: StepInfo, candidate_losses: Sequence[float] | None = None) -> list[Child]:
        scale = self.shrinking_scale(info)
        teacher = Child(self._max, "teacher", "max")
        if scale == 0.0:
            return [teacher]
        randoms = self.random_children(info, candidate_losses)
        return [
            teacher,
            *(Child(a, "student", f"random{i}", scale, sampled=True) for i, a in enumerate(randoms)),
            Child(self._min, "student", "min", scale),
        ]
