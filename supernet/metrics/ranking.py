"""How well a supernet ranks children: rank correlations and top-k agreement.

``score`` is what the supernet says (e.g. inherited accuracy), ``truth`` the ground truth (e.g.
stand-alone accuracy); higher is better for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def _arrays(score: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.asarray(score, dtype=float), np.asarray(truth, dtype=float)
    if s.shape != t.shape or s.ndim != 1 or len(s) < 2:
        raise ValueError(f"need two 1-D sequences of equal length >= 2, got shapes {s.shape} and {t.shape}")
    return s, t


def kendall_tau(score: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall tau-b (scipy's default variant, which handles ties)."""
    return float(stats.kendalltau(*_arrays(score, truth)).statistic)


def spearman_rho(score: Sequence[float], truth: Sequence[float]) -> float:
    return float(stats.spearmanr(*_arrays(score, truth)).statistic)


def sparse_kendall_tau(score: Sequence[float], truth: Sequence[float], resolution: float = 0.001) -> float:
    """Kendall tau-b after binning the ground-truth accuracies to ``resolution`` (0.1% for
    accuracies in [0, 1]): children whose true accuracies differ by less are counted as ties."""
    s, t = _arrays(score, truth)
    return float(stats.kendalltau(s, np.floor(t / resolution + 1e-9)).statistic)


def _top(values: np.ndarray, k: int) -> set[int]:
    # stable: ties broken by index so that results are reproducible
    return set(np.argsort(-values, kind="stable")[:k].tolist())


def precision_at_k(score: Sequence[float], truth: Sequence[float], k: int) -> float:
    """|topK(score) ∩ topK(truth)| / K."""
    s, t = _arrays(score, truth)
    if not 1 <= k <= len(s):
        raise ValueError(f"k must be between 1 and {len(s)}, got {k}")
    return len(_top(s, k) & _top(t, k)) / k


def top_k_percentile(score: Sequence[float], truth: Sequence[float], k: int = 1) -> float:
    """Mean percentile (100 = best) in the true ranking of the supernet's top-k children."""
    s, t = _arrays(score, truth)
    true_rank = stats.rankdata(t, method="average")  # 1 = worst
    picks = sorted(_top(s, k))
    return float(np.mean([100.0 * (true_rank[i] - 1) / (len(t) - 1) for i in picks]))


def ranking_report(score: Sequence[float], truth: Sequence[float], top_fraction: float = 0.25) -> dict[str, float]:
    k = max(1, round(len(score) * top_fraction))
    return {
        "kendall_tau": kendall_tau(score, truth),
        "spearman_rho": spearman_rho(score, truth),
        "sparse_kendall_tau": sparse_kendall_tau(score, truth),
        f"precision_at_top{int(top_fraction * 100)}pct": precision_at_k(score, truth, k),
        "top1_percentile": top_k_percentile(score, truth, 1),
    }
