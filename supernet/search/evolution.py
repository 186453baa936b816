"""Constrained evolutionary search and a random-search baseline over the children of a supernet.

Both see the same ``Problem``: analytic multiply-adds/params (free), measured latency (only when a
latency limit or a latency objective asks for it, only for archs within the analytic limits), and
the score on the search split after BN recalibration (the expensive part, cached per arch). The
search split is held out of training (``data.search_size``), so validation and test stay unbiased
reports of what the search picks. A search's budget is the number of distinct archs it scores; the
random baseline scores as many as evolution does.

Evolution (Real et al.'s aging-free variant used by OFA/BigNAS/AttentiveNAS): a feasible random
population; then each iteration draws a new generation from parents — the top-k by search-split
accuracy among the feasible archs scored so far — by mutation (each dimension re-drawn with
``mutation_prob``) and uniform crossover of two parents. Only feasible archs not scored before by
this search are accepted. (Adding the accuracy/multiply-add Pareto front to the parents did worse on a
synthetic problem: under one limit it spends the budget on small, weak archs.) A Pareto search
(``objective`` a cost) keeps the top-k of each cost bin as parents instead, to cover the range. A
prescreen (an accuracy predictor, or the epsinas zero-cost score) picks which of ``pool`` times as
many drawn archs are scored.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from supernet.metrics.complexity import Complexity
from supernet.metrics.latency import LatencySettings
from supernet.metrics.report import ChildReport
from supernet.search.constraints import Constraints
from supernet.search.pareto import pareto_front
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
    """A scored arch: its cost, and its accuracy and loss on the split the search ranks by
    (``split``: ``search``, or ``val`` where the user asked to search on validation)."""

    arch: Arch
    macs: int
    params: int
    latency_ms: float | None
    acc: float
    loss: float
    split: str = "search"
    reported: dict[str, float] = field(default_factory=dict)  # e.g. val_acc/test_acc of a front point

    @property
    def fitness(self) -> tuple[float, float]:
        """Accuracy on the search's split, ties broken by the lower loss (small data sets tie often)."""
        return (self.acc, -self.loss)

    def cost(self, name: str) -> float:
        """``macs``, ``params`` or ``latency`` (ms; measured before this is asked)."""
        value = {"macs": self.macs, "params": self.params, "latency": self.latency_ms}[name]
        if value is None:
            raise ValueError(f"the latency of {self.arch} was not measured")
        return float(value)

    def report(self, problem: Problem) -> ChildReport:
        scores = {f"{self.split}_acc": self.acc, f"{self.split}_loss": self.loss, **self.reported}
        return ChildReport(
            self.arch,
            Complexity(self.macs, self.params),
            calib_batches=problem.calib_batches,
            latency_ms=self.latency_ms,
            latency=problem.latency_settings,
            **scores,
        )


@dataclass(frozen=True)
class EvolutionSettings:
    population: int = 16
    iterations: int = 10
    mutation_prob: float = 0.2
    crossover_ratio: float = 0.5  # share of each generation made by crossover; the rest by mutation
    parents: int = 8
    max_tries: int = 2000  # draws allowed to find one new feasible arch
    pool: int = 4  # with a prescreen: archs drawn per arch scored

    def __post_init__(self) -> None:
        for name in ("population", "parents", "max_tries", "pool"):
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


OBJECTIVES = ("accuracy", "macs", "latency", "params")


class SearchExhausted(ValueError):
    """No new feasible arch could be drawn within ``max_tries``."""


class Search:
    """Searches of one space under one set of constraints, sharing one cache of scores.

    ``on_score(candidate, method, iteration)`` is called for every arch a search scores (history).
    ``cache`` (arch -> candidate) can be shared between searches under other limits: a score does
    not depend on the limits. ``split`` is the data split that scores candidates (``search``: held
    out of training; validation and test stay for reporting). ``objective`` is ``accuracy`` (the most
    accurate feasible arch) or a cost (``macs``, ``latency``, ``params``) for a Pareto search: the
    accuracy front against that cost, evolved in ``bins`` equal-width cost bins so that parents
    come from the whole range, as AlphaNet does with FLOPs.
    """

    def __init__(
        self,
        space: SearchSpace,
        problem: Problem,
        constraints: Constraints,
        on_score: Callable[[Candidate, str, int], None] | None = None,
        cache: dict[Arch, Candidate] | None = None,
        split: str = "search",
        objective: str = "accuracy",
        bins: int = 8,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r} is not one of {list(OBJECTIVES)}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.space, self.problem, self.constraints = space, problem, constraints
        self.on_score = on_score or (lambda candidate, method, iteration: None)
        self._scores: dict[Arch, Candidate] = {} if cache is None else cache
        self._feasible: dict[Arch, bool] = {}
        self.split, self.objective, self.bins = split, objective, bins

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

    def draw(
        self,
        make: Callable[[], Arch],
        exclude: set[Arch],
        max_tries: int,
        what: str,
        accept: Callable[[Arch], bool] = lambda arch: True,
    ) -> Arch:
        """The first arch from ``make()`` that is feasible, not in ``exclude`` and ``accept``-ed."""
        for _ in range(max_tries):
            arch = make()
            if arch not in exclude and self.feasible(arch) and accept(arch):
                return arch
        raise SearchExhausted(
            f"could not draw a new arch within {self.constraints.label} by {what} in {max_tries} tries (the "
            f"limit is tight for this space, or every feasible arch was scored); loosen the limit or raise max_tries"
        )

    # -- scoring ----------------------------------------------------------------------------------
    @property
    def measures_latency(self) -> bool:
        return self.constraints.latency_ms_max is not None or self.objective == "latency"

    def score(self, arch: Arch, method: str, iteration: int) -> Candidate:
        if arch not in self._scores:
            c, s = self.problem.complexity(arch), self.problem.score(arch, self.split)
            self._scores[arch] = Candidate(arch, c.macs, c.params, None, s.accuracy, s.loss, self.split)
        candidate = self._scores[arch]
        if candidate.latency_ms is None and self.measures_latency:
            candidate.latency_ms = self.problem.latency(arch)  # the problem measures each arch once
        self.on_score(candidate, method, iteration)
        return candidate

    def front(self, candidates: list[Candidate]) -> list[Candidate]:
        """The accuracy front of ``candidates`` against the objective's cost (multiply-adds for an
        accuracy search), by increasing cost."""
        cost = "macs" if self.objective == "accuracy" else self.objective
        return pareto_front(candidates, cost=lambda c: c.cost(cost))

    # -- searches ---------------------------------------------------------------------------------
    def random(self, budget: int, seed: int, max_tries: int = 2000) -> list[Candidate]:
        """``budget`` distinct feasible archs drawn uniformly, all scored."""
        rng, scored = random.Random(seed), {}
        for _ in range(budget):
            arch = self.draw(lambda: self.space.sample(rng), set(scored), max_tries, "random sampling")
            scored[arch] = self.score(arch, "random", 0)
        return list(scored.values())

    def evolution(self, settings: EvolutionSettings, seed: int, prescreen: Prescreen | None = None) -> list[Candidate]:
        """Evolutionary search; returns every candidate it scored (``settings.budget`` of them).

        A Pareto search splits each generation evenly between its cost bins: an arch drawn for a
        bin must cost what the bin spans, and is bred from the most accurate archs scored in that
        bin (or, while it has none, in the nearest bins) — a constrained search per bin, sharing
        one population, so that every part of the front improves. With ``prescreen``, each bin
        draws ``settings.pool`` times as many new feasible archs as it scores and scores those the
        prescreen ranks highest: the measured budget stays the same, spent on the promising ones."""
        rng, scored = random.Random(seed), {}
        sample = lambda: self.space.sample(rng)
        pool = settings.pool if prescreen is not None else 1
        bins = self._bins()
        shares = [settings.population // len(bins) + (k < settings.population % len(bins)) for k in range(len(bins))]
        for iteration in range(settings.iterations + 1):
            chosen: list[Arch] = []
            for b, share in zip(bins, shares):
                parents = self._parents(list(scored.values()), b, settings.parents) if iteration else []
                n_cross = round(share * settings.crossover_ratio) if len(parents) > 1 else 0
                drawn: list[Arch] = []
                for k in range(share * pool):
                    taken = set(scored) | set(chosen) | set(drawn)
                    if not parents:
                        makers = [("random sampling", sample)]
                    elif k % share < n_cross:
                        makers = [("crossover", lambda p=parents: self.space.crossover(*rng.sample(p, 2), rng))]
                    else:
                        makers = [
                            (
                                "mutation",
                                lambda p=parents: self.space.mutate(rng.choice(p), settings.mutation_prob, rng),
                            )
                        ]
                    # parents too alike to give anything new, or a bin hard to reach: explore instead
                    makers += [("random sampling", sample)] * bool(parents)
                    drawn.append(self._draw_in(b, makers, taken, settings.max_tries))
                chosen += self._screen(drawn, share, prescreen, scored)
            for arch in chosen:
                scored[arch] = self.score(arch, "evolution", iteration)
        return list(scored.values())

    def _draw_in(self, bin_: tuple[float, float] | None, makers, taken: set[Arch], max_tries: int) -> Arch:
        """A new feasible arch from the first of ``makers`` that gives one within ``bin_`` (a cost
        interval; None: any cost); failing that, any new feasible arch from the last maker."""
        inside = lambda arch: bin_ is None or bin_[0] <= self._cost(arch) <= bin_[1]
        for what, make in makers:
            try:
                return self.draw(make, taken, max_tries, what, inside)
            except SearchExhausted:
                continue
        return self.draw(makers[-1][1], taken, max_tries, makers[-1][0])

    def _cost(self, arch: Arch) -> float:
        if self.objective == "latency":
            return self.problem.latency(arch)
        c = self.problem.complexity(arch)
        return float(c.params if self.objective == "params" else c.macs)

    def _bins(self) -> list[tuple[float, float] | None]:
        """The cost intervals of a Pareto search: ``bins`` equal in log cost between the space's
        smallest and largest child (costs span orders of magnitude); ``[None]`` for an accuracy search."""
        if self.objective == "accuracy":
            return [None]
        low, high = self._cost(self.space.min()), self._cost(self.space.max())
        edges = [low * (high / low) ** (k / self.bins) for k in range(self.bins + 1)]
        return list(zip(edges[:-1], edges[1:]))

    def _parents(self, candidates: list[Candidate], bin_: tuple[float, float] | None, parents: int) -> list[Arch]:
        """The top ``parents`` by accuracy among the archs scored in ``bin_``; while it has fewer,
        the rest from the archs nearest to it in log cost."""
        ranked = sorted(candidates, key=lambda c: c.fitness, reverse=True)
        if bin_ is None:
            return [c.arch for c in ranked[:parents]]
        centre = math.sqrt(bin_[0] * bin_[1])
        distance = lambda c: (
            0.0 if bin_[0] <= self._cost(c.arch) <= bin_[1] else abs(math.log(self._cost(c.arch) / centre))
        )
        return [c.arch for c in sorted(ranked, key=distance)[:parents]]  # stable: by accuracy within a distance

    def _screen(
        self, archs: list[Arch], keep: int, prescreen: Prescreen | None, scored: dict[Arch, Candidate]
    ) -> list[Arch]:
        """The ``keep`` archs of ``archs`` to score: the first ones, or the prescreen's best."""
        if prescreen is None or len(archs) <= keep:
            return archs[:keep]
        values = prescreen.scores(archs, list(scored.values()))
        if values is None:  # the prescreen cannot rank yet (a predictor with too few measured children)
            return archs[:keep]
        order = sorted(range(len(archs)), key=lambda i: (-_finite(values[i]), i))
        return [archs[i] for i in sorted(order[:keep])]


class Prescreen(Protocol):
    """Ranks archs before any is scored on data (``supernet.search.prescreen``)."""

    def scores(self, archs: list[Arch], measured: list[Candidate]) -> list[float] | None:
        """A value per arch, higher is more promising (NaN: no opinion, ranked last), or None when
        it cannot rank yet; ``measured`` are the candidates scored so far by this search."""
        ...


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def best(candidates: list[Candidate]) -> Candidate:
    return max(candidates, key=lambda c: c.fitness)
