"""Prescreens of an evolutionary search: rank drawn archs before any is scored on data.

``PredictorPrescreen`` refits an ``AccuracyPredictor`` on every child scored so far (and on the
children of earlier tables, if given) and ranks by predicted accuracy; ``EpsinasPrescreen`` ranks
by the epsinas zero-cost score (one minibatch, no labels, no gradients). Either makes a search draw
``pool`` times as many archs as it scores and score the ones it ranks highest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from supernet.search.epsinas import epsinas_score
from supernet.search.evolution import Candidate
from supernet.search.predictor import AccuracyPredictor, Pair
from supernet.space import Arch, SearchSpace

PRESCREENS = ("none", "predictor", "epsinas")


class PredictorPrescreen:
    """Predicted accuracy from a predictor fit on ``prior`` pairs (e.g. ``read_pairs`` of an
    evaluate table) plus the candidates scored so far; no ranking before ``min_pairs`` are known."""

    def __init__(
        self, space: SearchSpace, model: str = "gbt", seed: int = 0, prior: Sequence[Pair] = (), min_pairs: int = 8
    ):
        self.space, self.model, self.seed, self.prior, self.min_pairs = space, model, seed, list(prior), min_pairs
        AccuracyPredictor(space, model, seed=seed)  # refuse bad settings before the search starts

    def scores(self, archs: list[Arch], measured: list[Candidate]) -> list[float] | None:
        pairs = self.prior + [(c.arch, c.acc) for c in measured if math.isfinite(c.acc)]
        if len(pairs) < self.min_pairs:
            return None
        return AccuracyPredictor(self.space, self.model, seed=self.seed).fit(pairs).predict(archs).tolist()


class EpsinasPrescreen:
    """The epsinas score of each arch on one fixed minibatch (cached per arch)."""

    def __init__(self, model: torch.nn.Module, batch: torch.Tensor):
        self.model, self.batch = model, batch
        self._cache: dict[Arch, float] = {}

    def score(self, arch: Arch) -> float:
        if arch not in self._cache:
            self._cache[arch] = epsinas_score(self.model, arch, self.batch)
        return self._cache[arch]

    def scores(self, archs: list[Arch], measured: list[Candidate]) -> list[float]:
        return [self.score(arch) for arch in archs]
