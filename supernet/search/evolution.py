"""Constrained evolutionary search and a random-search baseline over the children of a supernet.

Both see the same ``Problem``: analytic multiply-adds/params (free), measured latency (only when a
latency limit is set, only for archs within the analytic limits), and the validation score after
BN recalibration (the expensive part, cached per arch). A search's budget is the number of
distinct archs it scores; the random baseline scores as many as evolution does.

Evolution (Real et al.'s aging-free variant used by OFA/BigNAS/AttentiveNAS): a feasible random
population; then each iteration draws a new generation from parents — the top-k by validation
accuracy among the feasible archs scored so far — by mutation (each dimension re-drawn with
``mutation_prob``) and uniform crossover of two parents. Only feasible archs not scored before by
this search are accepted. (Adding the accuracy/multiply-add Pareto front to the parents did worse on a
synthetic problem: under one limit it spends the budget on small, weak archs.)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from supernet.metrics.complexity import Complexity
from supernet.metrics.latency import LatencySettings
from supernet.metrics.report import ChildReport
from supernet.search.constraints import Constraints
from supernet.space import Arch, SearchSpace


class Problem(Protocol):
    """What a search needs (``supernet.child.ChildEvaluator`` provides it); ``latency_settings``
    and ``calib_batches`` say how ``latency`` and ``score`` measure (reported with the numbers)."""

    latency_settings: LatencySettings
    calib_batches: int

    def complexity(self, arch: Arch) -> Complexity: ...

    def latency(self, arch: Arch) -> float: ...

    def score(self, arch: Arch, split: str): ...  # returns an object with .accuracy and .loss


@dataclass
class Candidate:
    arch: Arch
    macs: int
    params: int
    latency_ms: float | None
    val_acc: float
    val_loss: float

    @property
    def fitness(self) -> tuple[float, float]:
        """Validation accuracy, ties broken by the lower validation loss (small data sets tie often)."""
        return (self.val_acc, -self.val_loss)

    def report(self, problem: Problem) -> ChildReport:
        return ChildReport(
            self.arch,
            Complexity(self.macs, self.params),
            val_acc=self.val_acc,
            val_loss=self.val_loss,
            calib_batches=problem.calib_batches,
            latency_ms=self.latency_ms,
            latency=problem.latency_settings,
        )


@dataclass(frozen=True)
class EvolutionSettings:
    population: int = 16
    iterations: int = 10
    mutation_prob: float = 0.2
    crossover_ratio: float = 0.5  # share of each generation made by crossover; the rest by mutation
    parents: int = 8
    max_tries: int = 2000  # draws allowed to find one new feasible arch

    def __post_init__(self) -> None:
        for name in ("population", "parents", "max_tries"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.iterations, int) or self.iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {self.iterations!r}")
        for name in ("mutation_prob", "crossover_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")

    @property
    def budget(self) -> int:
        """Distinct archs scored by one evolutionary search (and by its random baseline)."""
        return self.population * (self.iterations + 1)


class SearchExhausted(ValueError):
    """No new feasible arch could be drawn within ``max_tries``."""


class Search:
    """Searches of one space under one set of constraints, sharing one cache of scores.

    ``on_score(candidate, method, iteration)`` is called for every arch a search scores (history).
    ``cache`` (arch -> candidate) can be shared between searches under other limits: a score does
    not depend on the limits.
    """

    def __init__(
        self,
        space: SearchSpace,
        problem: Problem,
        constraints: Constraints,
        on_score: Callable[[Candidate, str, int], None] | None = None,
        cache: dict[Arch, Candidate] | None = None,
    ):
        self.space, self.problem, self.constraints = space, problem, constraints
        self.on_score = on_score or (lambda candidate, method, iteration: None)
        self._scores: dict[Arch, Candidate] = {} if cache is None else cache
        self._feasible: dict[Arch, bool] = {}

    # -- feasibility ------------------------------------------------------------------------------
    def feasible(self, arch: Arch) -> bool:
        if arch not in self._feasible:
            c, lim = self.problem.complexity(arch), self.constraints
            ok = (lim.macs_max is None or c.macs <= lim.macs_max) and (
                lim.params_max is None or c.params <= lim.params_max
            )
            if ok and lim.latency_ms_max is not None:  # measured only for archs within the analytic limits
                ok = self.problem.latency(arch) <= lim.latency_ms_max
            self._feasible[arch] = ok
        return self._feasible[arch]

    def draw(self, make: Callable[[], Arch], exclude: set[Arch], max_tries: int, what: str) -> Arch:
        """The first arch from ``make()`` that is feasible and not in ``exclude``."""
        for _ in range(max_tries):
            arch = make()
            if arch not in exclude and self.feasible(arch):
                return arch
        raise SearchExhausted(
            f"could not draw a new arch within {self.constraints.label} by {what} in {max_tries} tries (the "
            f"limit is tight for this space, or every feasible arch was scored); loosen the limit or raise max_tries"
        )

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, arch: Arch, method: str, iteration: int) -> Candidate:
        if arch not in self._scores:
            c, s = self.problem.complexity(arch), self.problem.score(arch, "val")
            self._scores[arch] = Candidate(arch, c.macs, c.params, None, s.accuracy, s.loss)
        candidate = self._scores[arch]
        if candidate.latency_ms is None and self.constraints.latency_ms_max is not None:
            candidate.latency_ms = self.problem.latency(arch)  # the problem measures each arch once
        self.on_score(candidate, method, iteration)
        return candidate

    # -- searches ---------------------------------------------------------------------------------
    def random(self, budget: int, seed: int, max_tries: int = 2000) -> list[Candidate]:
        """``budget`` distinct feasible archs drawn uniformly, all scored."""
        rng, scored = random.Random(seed), {}
        for _ in range(budget):
            arch = self.draw(lambda: self.space.sample(rng), set(scored), max_tries, "random sampling")
            scored[arch] = self.score(arch, "random", 0)
        return list(scored.values())

    def evolution(self, settings: EvolutionSettings, seed: int) -> list[Candidate]:
        """Evolutionary search; returns every candidate it scored (``settings.budget`` of them)."""
        rng, scored = random.Random(seed), {}
        sample = lambda: self.space.sample(rng)
        for _ in range(settings.population):
            arch = self.draw(sample, set(scored), settings.max_tries, "random sampling")
            scored[arch] = self.score(arch, "evolution", 0)
        for iteration in range(1, settings.iterations + 1):
            ranked = sorted(scored.values(), key=lambda c: c.fitness, reverse=True)
            parents = [c.arch for c in ranked[: settings.parents]]
            n_cross = round(settings.population * settings.crossover_ratio) if len(parents) > 1 else 0
            makers = [
                ("crossover", lambda parents=parents: self.space.crossover(*rng.sample(parents, 2), rng))
            ] * n_cross
            makers += [
                (
                    "mutation",
                    lambda parents=parents: self.space.mutate(rng.choice(parents), settings.mutation_prob, rng),
                )
            ] * (settings.population - n_cross)
            for what, make in makers:
                try:
                    arch = self.draw(make, set(scored), settings.max_tries, what)
                except SearchExhausted:  # parents too alike to give anything new: explore instead
                    arch = self.draw(sample, set(scored), settings.max_tries, "random sampling")
                scored[arch] = self.score(arch, "evolution", iteration)
        return list(scored.values())


def best(candidates: list[Candidate]) -> Candidate:
    return max(candidates, key=lambda c: c.fitness)
