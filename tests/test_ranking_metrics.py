import pytest

from supernet.metrics.ranking import (
    kendall_tau,
    precision_at_k,
    ranking_report,
    sparse_kendall_tau,
    spearman_rho,
    top_k_percentile,
)


def test_perfect_and_reversed_orders():
    truth = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert kendall_tau(truth, truth) == pytest.approx(1.0)
    assert kendall_tau(truth[::-1], truth) == pytest.approx(-1.0)
    assert spearman_rho([1, 2, 3, 4, 5], truth) == pytest.approx(1.0)


def test_hand_computed_kendall_and_spearman():
    # one discordant pair out of 6: tau = (5 - 1) / 6
    assert kendall_tau([1, 2, 4, 3], [1, 2, 3, 4]) == pytest.approx(4 / 6)
    # d = [0, 0, 1, -1]: rho = 1 - 6 * 2 / (4 * 15)
    assert spearman_rho([1, 2, 4, 3], [1, 2, 3, 4]) == pytest.approx(0.8)


def test_sparse_kendall_counts_near_equal_truths_as_ties():
    truth = [0.9001, 0.9004, 0.95, 0.97]  # first two fall in one 0.1% bin
    score = [2.0, 1.0, 3.0, 4.0]
    assert kendall_tau(score, truth) < 1.0
    # tau-b with one tie in truth: 5 concordant, 0 discordant, n1 = 6, n2 = 5 -> 5 / sqrt(30)
    assert sparse_kendall_tau(score, truth) == pytest.approx(5 / 30**0.5)


def test_precision_at_k_and_percentile():
    truth = [1, 2, 3, 4, 5, 6, 7, 8]
    score = [8, 7, 6, 5, 4, 3, 2, 1]  # reversed
    assert precision_at_k(score, truth, 2) == 0.0
    assert precision_at_k(truth, truth, 2) == 1.0
    assert precision_at_k([1, 2, 3, 4, 5, 6, 8, 7], truth, 2) == 1.0
    assert precision_at_k([1, 2, 3, 4, 5, 8, 6, 7], truth, 2) == 0.5
    assert top_k_percentile(score, truth, 1) == 0.0
    assert top_k_percentile(truth, truth, 1) == 100.0
    report = ranking_report(truth, truth)
    assert report["precision_at_top25pct"] == 1.0


def test_bad_input():
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        precision_at_k([1, 2], [1, 2], 3)
