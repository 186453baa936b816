"""``SplitSchedule``: when and how a ``SupernetCollection`` is split during training (the
``fewshot=gradient_matching`` config group).

Split k (counted from 0) comes after ``warmup + k * every`` epochs or steps (``unit``) of training,
before the training step that starts there. It measures, on ``batches`` fixed training batches,
the value gradients of every allowed dimension in every member in use (inside its part of the
space), and splits the member and dimension whose values disagree most (the lowest mean
similarity across the min-cut); the new member starts as a copy of its parent, weights and
optimizer state. Under DDP each rank measures on its shard of the batches and the gradients are
averaged across ranks before the similarities (``value_gradients``), so every rank makes the
same split.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import torch

from supernet.distributed import derive_seed
from supernet.fewshot.collection import MemberSplit, SupernetCollection, copy_optimizer_state
from supernet.fewshot.gradient_matching import Split, candidate_dimensions, choose_split
from supernet.space import SearchSpace

UNITS = ("epochs", "steps")


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fewshot.{key}={value!r} must be a positive integer")
    return value


class SplitSchedule:
    """The options of ``conf/fewshot/gradient_matching.yaml`` (documented there), checked here."""

    def __init__(
        self,
        splits: int = 1,
        dimensions: Sequence[str] = (),
        unit: str = "epochs",
        warmup: int = 1,
        every: int = 1,
        batches: int = 2,
        children: int = 4,
        seed: int = 0,
    ):
        self.splits = _positive_int("splits", splits)
        if isinstance(dimensions, str) or not dimensions:
            raise ValueError(
                f"fewshot.dimensions={dimensions!r} must be a non-empty list of dimensions (stage2.kernel, ...)"
            )
        self.dimensions = [str(d) for d in dimensions]
        if unit not in UNITS:
            raise ValueError(f"fewshot.unit={unit!r} is not one of {list(UNITS)}")
        self.unit = unit
        self.warmup, self.every = _positive_int("warmup", warmup), _positive_int("every", every)
        self.batches, self.children = _positive_int("batches", batches), _positive_int("children", children)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"fewshot.seed={seed!r} must be a non-negative integer")
        self.seed = seed

    def check(self, space: SearchSpace) -> None:
        """The dimensions exist in ``space`` with two choices or more, and can make ``splits`` splits."""
        try:
            dims = candidate_dimensions(space, self.dimensions)
        except ValueError as err:
            raise ValueError(f"fewshot.dimensions: {err}") from None
        most = math.prod(len(d.choices) for d in dims)  # every member owning one value of each
        if self.splits + 1 > most:
            raise ValueError(
                f"fewshot.splits={self.splits} needs {self.splits + 1} sub-supernets, but the values of "
                f"fewshot.dimensions={self.dimensions} can be shared among at most {most}"
            )

    def points(self) -> list[int]:
        """When each split comes, in ``unit`` of training."""
        return [self.warmup + k * self.every for k in range(self.splits)]

    def check_length(self, length: float) -> None:
        """Every split comes before the end of a training of ``length`` (in ``unit``)."""
        last = self.points()[-1]
        if last >= length:
            raise ValueError(
                f"fewshot: split {self.splits} of {self.splits} would come after {last} {self.unit} "
                f"(fewshot.warmup={self.warmup}, fewshot.every={self.every}), at or beyond the end of "
                f"training ({length:g} {self.unit}): lower them or train longer"
            )

    def split_steps(self, steps_per_epoch: int, total_steps: int) -> list[int]:
        """The global step before which each split comes, checked against the training length."""
        per_unit = steps_per_epoch if self.unit == "epochs" else 1
        self.check_length(total_steps / per_unit)
        return [point * per_unit for point in self.points()]

    def split(
        self, collection: SupernetCollection, optimizer: torch.optim.Optimizer, loader: Iterable, step: int
    ) -> MemberSplit:
        """Measure on the first ``batches`` batches of ``loader`` and make the next split of
        ``collection`` (its new member gets a copy of its parent's state in ``optimizer``)."""
        device = next(collection.parameters()).device
        batches = [(b[0].to(device), b[1].to(device)) for b in itertools.islice(loader, self.batches)]
        if not batches:
            raise ValueError("fewshot: the training data gave no batch to measure gradients on")
        seed = derive_seed(self.seed, "fewshot split", len(collection.splits))
        candidates: list[tuple[int, Split]] = []
        for member in range(collection.in_use):
            region = collection.region(member)
            if candidate_dimensions(collection.space, self.dimensions, region):
                _, measured = choose_split(
                    collection.members[member], self.dimensions, batches, self.children, seed, region=region
                )
                candidates += [(member, s) for s in measured]
        # the lowest cut wins; ties go to the first member, then the first listed dimension
        parent, chosen = min(candidates, key=lambda c: c[1].cut if math.isfinite(c[1].cut) else math.inf)
        child = collection.split(parent, chosen, step, tuple(candidates))
        copy_optimizer_state(optimizer, collection.members[parent], collection.members[child])
        return collection.splits[-1]
