"""Does importance sampling reduce the variance of the training gradient? Measured at fixed weights.

Training estimates the mean gradient ``ḡ`` of the uniform objective (the mean over children, or
over training samples) from draws. Drawing ``i`` from ``p`` instead of uniformly and weighting
its gradient by ``w_i = u_i / p_i`` keeps the estimate unbiased; its variance is
``E_p[||w g||²] - ||ḡ||² = E_u[w ||g||²] - ||ḡ||²``. So one pool of gradients drawn *uniformly*
gives the absolute variance of every sampling rule at once (no rule divided by its own mean),
and ``p ∝ ||g||`` (the oracle, the variance-minimising rule) is ``w_i = mean ||g|| / ||g_i||``.

Everything is computed from the Gram matrix ``K = G Gᵀ`` of the pool's flat gradients
(``||ḡ||²`` by its unbiased U-statistic), so a bootstrap over the pool costs no more gradients.
PA&DA (CVPR 2023) applies no weights when it trains (a biased resampling); the weights here are
what makes its sampling *comparable*: the question is whether ``p`` puts draws where the
gradients are large.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import torch
from scipy import stats as scipy_stats
from torch import nn

from supernet.models.base import Supernet
from supernet.models.calibration import calibrate_bn, load_bn_state
from supernet.ops import resize_to
from supernet.sampling import Child, PadaSinglePathSampler, StepInfo, StepResult
from supernet.sampling.data_sampler import sample_scores
from supernet.sampling.pada import IMPORTANCE_RULES
from supernet.space import Arch, SearchSpace
from supernet.training.step import GradientProbe

ORACLE = None  # a weight entry of ``variance_ratios`` that means p ∝ ||g_i||


def flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() if p.grad is not None else p.new_zeros(p.numel()) for p in model.parameters()])


def path_gradients(
    model: Supernet, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor, archs: Sequence[Arch], probe=None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The flat gradient of each child's mean loss on one fixed batch, as training computes it
    (train-mode BN, no dropout): an ``(len(archs), num_params)`` matrix, and the probe's per-stage
    statistics of each backward (empty without a probe)."""
    model.train()
    model.set_regularization(False)
    grads, stats = [], []
    for arch in archs:
        model.set_arch(arch)
        model.zero_grad(set_to_none=True)
        if probe is not None:
            probe.start()
        criterion(model(resize_to(x, arch.resolution)), y).mean().backward()
        if probe is not None:
            stats.append(probe.stop())
        grads.append(flat_grad(model).double())
    model.zero_grad(set_to_none=True)
    return torch.stack(grads), stats


def sample_gradients(
    model: Supernet, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor, arch: Arch
) -> torch.Tensor:
    """Per-sample flat gradients of one child (``(len(x), num_params)``), in eval mode: the
    sample's gradient must not depend on its batch mates, so BN uses its running statistics
    (recalibrate them for ``arch`` first)."""
    model.eval()
    model.set_arch(arch)
    grads = []
    for i in range(len(x)):
        model.zero_grad(set_to_none=True)
        criterion(model(resize_to(x[i : i + 1], arch.resolution)), y[i : i + 1]).mean().backward()
        grads.append(flat_grad(model).double())
    model.zero_grad(set_to_none=True)
    return torch.stack(grads)


def path_weights(space: SearchSpace, archs: Sequence[Arch], probs: Sequence[Sequence[float]]) -> torch.Tensor:
    """``u(a) / p(a)`` of each arch for a factorised distribution (one categorical per dimension
    of ``space.dimensions``, as PA&DA's path sampler keeps), ``u`` the uniform one."""
    out = []
    for arch in archs:
        log_w = 0.0
        for dim, p in zip(space.dimensions, probs):
            q = p[dim.choices.index(space.value(arch, dim))]
            log_w += -math.log(len(dim.choices)) - (math.log(q) if q > 0 else -math.inf)
        out.append(math.exp(log_w))
    return torch.tensor(out, dtype=torch.float64)


def _ratios(gram: torch.Tensor, weights: Mapping[str, torch.Tensor | None]) -> dict[str, float]:
    n = gram.shape[0]
    sq = gram.diagonal()
    mean_sq = (gram.sum() - sq.sum()) / (n * (n - 1))  # unbiased ||ḡ||²
    var_u = sq.mean() - mean_sq
    out = {}
    for name, w in weights.items():
        second = sq.sqrt().mean() ** 2 if w is ORACLE else (w * sq).mean()
        out[name] = float((second - mean_sq) / var_u)
    return out


def variance_ratios(
    gram: torch.Tensor, weights: Mapping[str, torch.Tensor | None], draws: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Variance of each weighted estimator relative to uniform sampling, with a 95% bootstrap
    interval over the pool: ``{name: (ratio, low, high)}``. ``gram``: the Gram matrix of a pool of
    gradients drawn uniformly; ``weights[name]``: ``u_i / p_i`` of each pool member, or ``ORACLE``."""
    point = _ratios(gram, weights)
    gen = torch.Generator().manual_seed(seed)
    n = gram.shape[0]
    boot: dict[str, list[float]] = {name: [] for name in weights}
    for _ in range(draws):
        idx = torch.randint(0, n, (n,), generator=gen)
        sub = _ratios(gram[idx][:, idx], {k: (w if w is ORACLE else w[idx]) for k, w in weights.items()})
        for name, r in sub.items():
            boot[name].append(r)
    out = {}
    for name, r in point.items():
        low, high = (
            torch.tensor(boot[name], dtype=torch.float64)
            .quantile(torch.tensor([0.025, 0.975], dtype=torch.float64))
            .tolist()
        )
        out[name] = (r, low, high)
    return out


def fit_path_distribution(
    space: SearchSpace, importance: str, archs: Sequence[Arch], stats: Sequence[torch.Tensor], tau: float
) -> list[list[float]]:
    """The distribution PA&DA's path sampler (rule ``importance``) learns from these children's
    gradient statistics, updated with ``tau``: the sampler's own code, fed one step per child."""
    sampler = PadaSinglePathSampler(space, importance=importance)
    for step, (arch, s) in enumerate(zip(archs, stats)):
        child = Child(arch, "student", "random0", sampled=True)
        sampler.on_step_end(StepInfo(step), StepResult([child], {}, {}, True, grad_stats={"random0": s}))
    sampler.update(tau)
    return sampler.probs


def pada_variance(
    model: Supernet,
    criterion: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    path_probs: Sequence[Sequence[float]] | None,
    data_probs: torch.Tensor | None,
    *,
    num_archs: int = 256,
    fit_archs: int = 96,
    num_samples: int = 384,
    batch_size: int = 256,
    draws: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, tuple[float, float, float]] | float]:
    """PA&DA's two halves at the model's current weights, each as variance relative to uniform
    sampling with a bootstrap interval (``variance_ratios``). ``x, y``: the whole training set.

    Paths: ``num_archs + fit_archs`` children drawn uniformly, each child's gradient on one fixed
    batch of ``batch_size`` training images. The first ``fit_archs`` fit each importance rule's
    distribution (tau = 1: the rule itself); the rest measure the variance of: ``trained`` (the
    distribution ``path_probs`` that training used), every rule, and the oracle ``p(a) ∝ ||g_a||``
    over whole children (the bound no factorised distribution reaches).

    Data: per-sample gradients of the max child (BN recalibrated, eval mode) on ``num_samples``
    uniformly drawn training samples; the variance of: ``trained`` (``data_probs``), ``proxy``
    (p ∝ PA&DA's logit score ``||softmax(z) - onehot(y)||`` at these weights, all samples), and
    the oracle ``p ∝ ||g_i||``. Also the Spearman correlation of the proxy with ``||g_i||``.

    The model's BN statistics are overwritten (train-mode passes, then recalibration for the max
    child) and gradient observers are added to its parameters: pass a copy of a model you go on using.
    """
    space = model.space
    gen = torch.Generator().manual_seed(seed)
    arch_gen = random.Random(seed)
    out: dict[str, dict[str, tuple[float, float, float]] | float] = {}

    # -- paths
    batch = torch.randperm(len(x), generator=gen)[:batch_size]
    archs = [space.sample(arch_gen) for _ in range(fit_archs + num_archs)]
    probe = GradientProbe(model, space.num_stages)
    grads, stats = path_gradients(model, criterion, x[batch], y[batch], archs, probe)
    fit, pool = slice(0, fit_archs), slice(fit_archs, None)
    weights: dict[str, torch.Tensor | None] = {}
    if path_probs is not None:
        weights["trained"] = path_weights(space, archs[pool], path_probs)
    for rule in IMPORTANCE_RULES:
        probs = fit_path_distribution(space, rule, archs[fit], stats[fit], tau=1.0)
        weights[rule] = path_weights(space, archs[pool], probs)
    weights["oracle"] = ORACLE
    pool_grads = grads[pool]
    out["paths"] = variance_ratios(pool_grads @ pool_grads.T, weights, draws, seed)

    # -- data
    arch = space.max()
    calib = torch.randperm(len(x), generator=gen)[: 8 * batch_size].split(batch_size)
    load_bn_state(model, calibrate_bn(model, (x[i] for i in calib), len(calib), arch=arch, sync=False))
    model.eval()
    with torch.no_grad():
        scores = torch.cat(
            [sample_scores(model(resize_to(xb, arch.resolution)), yb) for xb, yb in zip(x.split(512), y.split(512))]
        ).double()
    subset = torch.randperm(len(x), generator=gen)[:num_samples]
    sample_grads = sample_gradients(model, criterion, x[subset], y[subset], arch)
    n = len(x)
    weights = {}
    if data_probs is not None:
        weights["trained"] = 1.0 / (n * data_probs.double()[subset])
    weights["proxy"] = 1.0 / (n * (scores / scores.sum())[subset])
    weights["oracle"] = ORACLE
    gram = sample_grads @ sample_grads.T
    out["data"] = variance_ratios(gram, weights, draws, seed)
    out["proxy_spearman"] = float(scipy_stats.spearmanr(scores[subset], gram.diagonal().sqrt()).statistic)
    return out
