"""Who is trained each step: the children of one optimizer step.

Every random draw comes from a generator seeded with ``(seed, global_step)``: every rank draws the
same children with no communication, and a resumed run draws what an uninterrupted run would.
Samplers that learn (PA&DA, attentive) keep their state in ``state_dict`` (plain types only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from supernet.space import Arch, SearchSpace


@dataclass(frozen=True)
class Child:
    """One child of a step. ``role='teacher'`` learns from labels with dropout/drop-path on and
    provides the soft targets; ``'student'`` learns from the teacher (or labels when there is none)."""

    arch: Arch
    role: str
    name: str
    grad_scale: float = 1.0


def step_generator(seed: int, step: int, stream: str = "arch") -> random.Random:
    # str seeds are hashed with SHA-512 by ``random``: identical in every process (no hash salt).
    return random.Random(f"{stream}:{seed}:{step}")


class ArchSampler:
    """Base class: ``children(step)`` lists the children of one step."""

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space, self.seed = space, seed

    def children(self, step: int, epoch: int = 0, max_epochs: int = 1) -> list[Child]:
        raise NotImplementedError

    def draw(self, generator: random.Random) -> Arch:
        """One random child (uniform over each dimension; PA&DA overrides this)."""
        return self.space.sample(generator)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])


class UniformSampler(ArchSampler):
    """One uniformly random child per step, trained on labels (single-path one-shot training)."""

    def children(self, step: int, epoch: int = 0, max_epochs: int = 1) -> list[Child]:
        return [Child(self.draw(step_generator(self.seed, step)), "student", "random0")]


class SandwichSampler(ArchSampler):
    """BigNAS sandwich rule: the largest child (teacher), ``num_random`` random children, the smallest."""

    def __init__(self, space: SearchSpace, seed: int = 0, num_random: int = 2):
        super().__init__(space, seed)
        if num_random < 0:
            raise ValueError(f"sampler.num_random must be >= 0, got {num_random}")
        self.num_random = num_random
        self._max, self._min = space.max(), space.min()

    def random_children(self, generator: random.Random, step: int) -> list[Arch]:
        return [self.draw(generator) for _ in range(self.num_random)]

    def children(self, step: int, epoch: int = 0, max_epochs: int = 1) -> list[Child]:
        gen = step_generator(self.seed, step)
        randoms = self.random_children(gen, step)
        return [
            Child(self._max, "teacher", "max"),
            *(Child(a, "student", f"random{i}") for i, a in enumerate(randoms)),
            Child(self._min, "student", "min"),
        ]
