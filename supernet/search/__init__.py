"""Evolutionary and random search of children under multiply-add / parameter / latency limits, an
accuracy predictor fit on measured children, and the epsinas zero-cost score."""

from supernet.search.constraints import Constraints, check_achievable, expand
from supernet.search.epsinas import epsinas_score
from supernet.search.evolution import Candidate, EvolutionSettings, Problem, Search, SearchExhausted, best
from supernet.search.pareto import pareto_front
from supernet.search.predictor import AccuracyPredictor, encode, read_pairs
from supernet.search.runner import ALGORITHMS, SearchResult, check_algorithm, check_targets, run_search

__all__ = [
    "Constraints",
    "expand",
    "check_achievable",
    "Candidate",
    "EvolutionSettings",
    "Problem",
    "Search",
    "SearchExhausted",
    "best",
    "pareto_front",
    "run_search",
    "check_algorithm",
    "check_targets",
    "SearchResult",
    "ALGORITHMS",
    "AccuracyPredictor",
    "encode",
    "read_pairs",
    "epsinas_score",
]
