"""One ``supernet-search`` run: every combination of limits, one search each, shared scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supernet.metrics.complexity import Complexity
from supernet.search.constraints import Constraints, check_achievable
from supernet.search.evolution import OBJECTIVES, Candidate, EvolutionSettings, Prescreen, Problem, Search, best
from supernet.search.pareto import pareto_front
from supernet.space import Arch, SearchSpace

ALGORITHMS = ("evolution", "random")


@dataclass
class SearchResult:
    history: list[dict[str, Any]] = field(default_factory=list)  # a row per scoring, in order
    best: dict[Constraints, Candidate] = field(default_factory=dict)
    scored: dict[Constraints, list[Candidate]] = field(default_factory=dict)
    cost: str = "macs"  # what the front is drawn against

    def front(self) -> list[Candidate]:
        """The accuracy front of every distinct arch scored against ``cost``, by increasing cost."""
        distinct = {c.arch: c for cs in self.scored.values() for c in cs}
        return pareto_front(distinct.values(), cost=lambda c: c.cost(self.cost))


def check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not one of {list(ALGORITHMS)}")


def check_targets(
    space: SearchSpace,
    targets: list[Constraints],
    complexity: Callable[[Arch], Complexity],
    latency: Callable[[Arch], float] | None = None,
) -> None:
    """Stop, naming the smallest achievable value, when a limit is below what the smallest child
    needs. Latency limits are checked only when ``latency`` is given (it measures the smallest child)."""
    c = complexity(space.min())
    smallest = {"macs_max": c.macs, "params_max": c.params}
    if latency is not None and any(lim.latency_ms_max is not None for lim in targets):
        smallest["latency_ms_max"] = latency(space.min())
    for target in targets:
        check_achievable(target, smallest)


def run_search(
    space: SearchSpace,
    problem: Problem,
    targets: list[Constraints],
    algorithm: str,
    settings: EvolutionSettings,
    seed: int,
    progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    split: str = "search",
    objective: str = "accuracy",
    bins: int = 8,
    prescreen: Prescreen | None = None,
) -> SearchResult:
    """Search under each of ``targets``, scoring on ``split``, for the most accurate arch
    (``objective=accuracy``) or the accuracy front against a cost (``macs``, ``latency``,
    ``params``; see ``Search``). Unreachable limits stop everything before any scoring.
    ``progress`` receives each history row as it is recorded (what a resumable history writes)."""
    check_algorithm(algorithm)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective!r} is not one of {list(OBJECTIVES)}")
    if prescreen is not None and algorithm != "evolution":
        raise ValueError("a prescreen ranks the archs of an evolutionary search: use algorithm=evolution")
    check_targets(space, targets, problem.complexity, problem.latency)
    result = SearchResult(cost="macs" if objective == "accuracy" else objective)
    cache: dict = {}
    for target in targets:

        def record(candidate: Candidate, method: str, iteration: int, target: Constraints = target) -> None:
            result.history.append(
                candidate.report(problem).row(constraints=target.label, method=method, iteration=iteration)
            )
            if progress is not None:
                progress(result.history[-1])

        search = Search(
            space, problem, target, on_score=record, cache=cache, split=split, objective=objective, bins=bins
        )
        if algorithm == "evolution":
            scored = search.evolution(settings, seed, prescreen)
        else:
            scored = search.random(settings.budget, seed, settings.max_tries)
        result.scored[target] = scored
        result.best[target] = best(scored)
    return result
