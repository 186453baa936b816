"""The epsinas zero-cost score of a child: how far its outputs move between two constant weightings.

Reference: E. Gracheva, "Neural Architecture Search: Two Constant Shared Weights Initialisations"
(arXiv:2302.04406, 2023; Artificial Intelligence Review 58, 2025), and the authors' code
(github.com/egracheva/epsinas, ``compute_epsinas`` in ``NAS-Bench-201/epsinas_utils.py``).

One minibatch, no labels, no gradients. For each of two constants ``w1``, ``w2``, every weight of the
network is set to that constant and every bias to zero, the minibatch is run, and the raw outputs
are flattened and min-max normalised to [0, 1]; the normalised values equal to 0 (the minimum of
each run) are left out. The score is the mean absolute difference of the two runs (over the
entries left in both) divided by the mean of all values left in either:

    p_i = (y_i - min y_i) / (max y_i - min y_i)           for the outputs y_i under weight w_i
    epsinas = mean |p_1 - p_2| / mean(p_1 ∪ p_2)          zeros of p_1 and p_2 left out

Higher means a more expressive child; the paper reports it correlating positively with trained
accuracy.

Here, as in the authors' code, "weights" are all parameters but biases, BatchNorm's affine scale
included, and BatchNorm normalises with the minibatch's statistics (their NAS-Bench-201 networks
use ``track_running_stats=False``). The outputs are the child's logits: under constant weights all
logits of one input are equal, so they carry what the authors' one-output networks carry. The
weights default to the authors' NAS-Bench-201 pair, (1e-7, 1); the paper picks the pair per search
space (the largest range for which fewer than 10% of sampled networks score NaN).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from supernet.ops import resize_to
from supernet.space import Arch

# The weights of the authors' NAS-Bench-201 runs (CNNs with BatchNorm, the closest to our families).
DEFAULT_WEIGHTS = (1e-7, 1.0)


def set_constant_weights(module: nn.Module, weight: float) -> None:
    """Every parameter of ``module`` set to ``weight``, but biases, set to 0 (the authors set each
    layer's ``weight`` to the constant and its ``bias`` to zero; parameters named otherwise, such
    as a transformer's position embedding, are weights here too, so that no trained value stays)."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.fill_(0.0 if name.rsplit(".", 1)[-1] == "bias" else weight)


def _batchnorm_on_the_batch(module: nn.Module) -> None:
    """Eval mode but for batch norms, which normalise with the minibatch's own statistics, as the
    authors' networks do (built afresh, in training mode). Dropout and drop-path stay off, so the
    score is deterministic; the running statistics the norms update belong to a throwaway copy."""
    module.eval()
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()


def _min_max(outputs: torch.Tensor) -> np.ndarray:
    y = outputs.detach().double().cpu().numpy().ravel()
    y[~np.isfinite(y)] = np.nan  # an overflowed output counts as not measured, as the authors do
    if np.isnan(y).all():
        return y
    low, high = np.nanmin(y), np.nanmax(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y - low) / (high - low)  # NaN everywhere for constant outputs: no dispersion to read


def epsinas_from_outputs(first: torch.Tensor, second: torch.Tensor) -> float:
    """The epsinas score of the outputs of one minibatch under the two constant weightings (see
    the module docstring); NaN when an output is constant or not finite."""
    runs = np.stack([_min_max(first), _min_max(second)])
    runs[runs == 0] = np.nan  # the minimum of each run carries no information once normalised
    differences = np.abs(runs[0] - runs[1])
    if np.isnan(differences).all():
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nanmean(differences) / np.nanmean(runs))


def epsinas_score(
    model: nn.Module, arch: Arch | str, x: torch.Tensor, weights: tuple[float, float] = DEFAULT_WEIGHTS
) -> float:
    """The epsinas score (Gracheva, arXiv:2302.04406) of the child ``arch`` of the supernet ``model``
    on the minibatch ``x`` of at least 2 inputs (no labels; resized to the child's resolution)::

        epsinas = mean |p_1 - p_2| / mean(p_1 ∪ p_2),   p_i = min-max normalised outputs under weight w_i

    The child is extracted and copied; every weight of the copy is set to ``w_i`` and every bias
    to 0, and one forward pass per weight runs under ``torch.no_grad()``. BatchNorm layers take the
    minibatch's statistics (training mode, as in the authors' code; their affine scale is a weight
    like any other, their shift a bias), every other layer runs in eval mode (no dropout). The
    forward passes run in float64 so that the small weight does not underflow in a deep child.
    The supernet's weights are untouched and its active child is restored.

    NaN when the outputs are constant or not finite: a score to skip, not to rank. This is the
    case for every child of a family normalised by LayerNorm (the ViT families): under constant
    weights all channels of a token are equal, so LayerNorm outputs its bias, 0, whatever the input.
    """
    if len(weights) != 2 or weights[0] == weights[1]:
        raise ValueError(f"epsinas needs two distinct constant weights, got {weights!r}")
    if x.ndim < 2 or x.shape[0] < 2:
        # under constant weights every class gets the same logit: one input has no dispersion to read
        raise ValueError(f"epsinas needs a minibatch of at least 2 inputs, got a tensor of shape {tuple(x.shape)}")
    arch = model.space.resolve(arch)
    active = model.arch
    try:
        child = copy.deepcopy(model.extract(arch))
    finally:
        model.set_arch(active)  # extraction activates ``arch``; the caller's child stays active
    _batchnorm_on_the_batch(child)
    # float64: with w1 = 1e-7 each layer without a skip path scales activations by about w1**2 / sqrt(eps)
    # of BatchNorm (~1e-11); in float32 a child of a dozen such layers underflows to an all-zero output
    # (NaN score), while the authors' NAS-Bench-201 cells keep magnitudes through their skip paths.
    child.to(device=x.device, dtype=torch.float64)
    x = resize_to(x, arch.resolution).to(torch.float64)
    outputs = []
    with torch.no_grad():
        for weight in weights:
            set_constant_weights(child, float(weight))
            outputs.append(child(x))
    return epsinas_from_outputs(*outputs)
