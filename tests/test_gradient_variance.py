"""The variance measurement behind PA&DA's mechanism table (``supernet.metrics.gradient_variance``)."""

from __future__ import annotations

import random

import pytest
import torch

from supernet.metrics.gradient_variance import ORACLE, path_weights, variance_ratios
from supernet.space import load_space


def _exact(g: torch.Tensor, p: torch.Tensor) -> float:
    """Variance of the importance-weighted estimator of the mean of ``g`` (rows) when a row is
    drawn from ``p``, relative to uniform draws: computed over the whole population."""
    n = len(g)
    mean = g.mean(0)
    sq = g.square().sum(1)
    var_u = sq.mean() - mean.square().sum()
    var_p = (p * sq / (n * p) ** 2).sum() - mean.square().sum()
    return float(var_p / var_u)


def test_ratios_from_a_uniform_pool_match_the_population_values():
    gen = torch.Generator().manual_seed(0)
    population = torch.randn(20, 5, generator=gen, dtype=torch.float64) + 0.5
    population[:4] *= 4  # a few large gradients: importance sampling has something to find
    p = torch.rand(20, generator=gen, dtype=torch.float64) + 0.2
    p /= p.sum()
    oracle = population.norm(dim=1) / population.norm(dim=1).sum()
    pool = torch.randint(0, 20, (1500,), generator=gen)  # drawn uniformly from the population
    g = population[pool]
    got = variance_ratios(
        g @ g.T, {"uniform": torch.ones(1500, dtype=torch.float64), "p": 1 / (20 * p[pool]), "oracle": ORACLE}, 200
    )
    assert got["uniform"] == pytest.approx((1.0, 1.0, 1.0))
    for name, q in (("p", p), ("oracle", oracle)):
        ratio, low, high = got[name]
        assert ratio == pytest.approx(_exact(population, q), rel=0.08)
        assert low <= _exact(population, q) <= high
    # p ∝ ||g|| minimises the variance: the oracle beats an arbitrary p and uniform sampling
    assert got["oracle"][0] < min(got["p"][0], 1.0)


def test_path_weights_are_uniform_over_drawn_probability():
    space = load_space("tiny")
    archs = [space.sample(random.Random(i)) for i in range(5)]
    uniform = [[1 / len(d.choices)] * len(d.choices) for d in space.dimensions]
    assert torch.allclose(path_weights(space, archs, uniform), torch.ones(5, dtype=torch.float64))
    # one dimension skewed: only that factor changes, u/p = (1/K) / p(value)
    skewed = [list(p) for p in uniform]
    k = next(i for i, d in enumerate(space.dimensions) if len(d.choices) == 2)
    skewed[k] = [0.8, 0.2]
    dim = space.dimensions[k]
    expected = [0.5 / (0.8 if space.value(a, dim) == dim.choices[0] else 0.2) for a in archs]
    assert path_weights(space, archs, skewed).tolist() == pytest.approx(expected)


@pytest.mark.slow
def test_pada_mechanism_on_a_trained_supernet(tmp_path):
    """At the weights of a short PA&DA run on cluttered digits (the measurement of
    ``benchmarks/pada_variance.py``, smaller): there is something to gain (the oracles sample with
    less variance than uniform), and the default path rule is below the first build's rule,
    which sampled with more variance than uniform. Not asserted, because it is not true on this
    task (RESULTS.md): the default rule below 1, the data proxy within 10% of its oracle."""
    from supernet.cli.train import train
    from supernet.losses import LabelSmoothingCE
    from supernet.metrics.gradient_variance import pada_variance

    result = train(
        [
            "experiment=spos_pada_cluttered",
            "data.train_size=1500",
            "data.val_size=200",
            "data.test_size=200",
            "trainer.max_epochs=3",
            "validation.children=[max]",
            "test_after_fit=false",
            "callbacks.progress=null",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    data = result["trainer"].datamodule.train_set
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([int(data[i][1]) for i in range(len(data))])
    module = result["module"]
    got = pada_variance(
        module.supernet,
        LabelSmoothingCE(0.1),
        x,
        y,
        module.sampler.probs,
        None,
        num_archs=128,
        fit_archs=64,
        num_samples=192,
        batch_size=128,
        draws=300,
    )
    paths, samples = got["paths"], got["data"]
    assert paths["oracle"][2] < 1 and samples["oracle"][2] < 1
    assert paths["child_norm"][0] < paths["stage_rms"][1]
