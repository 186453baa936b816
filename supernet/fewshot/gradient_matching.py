"""Gradient matching (GM-NAS: Hu et al., "Generalizing Few-Shot NAS with Gradient Matching", ICLR
2022): which values of a dimension disagree on how to update the shared weights, and how to split
the supernet along them.

For a candidate dimension (``stages[2].kernel``, ...) with values v_1..v_n, ``value_gradients``
averages the gradient of the training loss with respect to every weight of the supernet over
``children`` random children that take v_i there and over the given minibatches. The cosine
similarities of these mean gradients make a complete graph on the values; ``min_cut`` partitions it
in two by its minimum cut (the grouping whose similarities across the groups sum lowest: the values
that pull the shared weights apart end up in different sub-supernets). ``choose_split`` measures
every candidate dimension and splits the one whose cut is lowest per crossing edge (so that
dimensions with more values compare fairly).

Elastic ops slice one shared tensor, so every value's gradient lives in the same space (zero outside
the windows it used), the weights of the split dimension's own layers included. The measurement runs
on a copy of the supernet in training mode (BN normalises by the batch, as in training): the
supernet's weights, statistics and active child are left as they were. The partition is a
deterministic function of the similarities (exhaustive search, ties to the first grouping in
lexicographic order); the children are drawn from ``seed``, and under DDP the mean gradients are
averaged across ranks before any similarity is taken, so every rank makes the same split.

A ``region`` restricts the measurement to a part of the space (the values each dimension may take:
a sub-supernet's share, ``supernet.fewshot.collection``), for splitting a sub-supernet again.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from supernet.distributed import derive_seed, mean_over_ranks
from supernet.ops import resize_to
from supernet.space import Arch, Dimension, SearchSpace

Number = int | float
Region = Mapping[Dimension, Sequence[Number]]  # the values each restricted dimension may take


def split_dimension(space: SearchSpace, key: str) -> Dimension:
    """The dimension named ``key`` (``stage<i>.<field>``, ``stages[<i>].<field>`` or a global field),
    if it has values to split."""
    dim = space.dimension(key)
    if len(dim.choices) < 2:
        raise ValueError(f"dimension {key} has one choice ({dim.choices[0]}): nothing to split")
    return dim


def value_gradients(
    model: nn.Module,
    dimension: str,
    batches: Iterable[Sequence[torch.Tensor]],
    children: int = 4,
    seed: int = 0,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    region: Region | None = None,
) -> dict[Number, torch.Tensor]:
    """{value: mean gradient} of ``dimension`` of the supernet ``model``: for each value, the
    gradient of ``loss`` over every ``(x, y, ...)`` batch of ``batches``, averaged over ``children``
    random children with that value (the same children for every batch), flattened over all
    parameters (float64), and averaged across ranks. With ``region``, the children are drawn inside
    it and only the values it allows for ``dimension`` are measured."""
    space = model.space
    dim = split_dimension(space, dimension)
    region = dict(region or {})
    values = [v for v in dim.choices if v in region.get(dim, dim.choices)]
    batches = list(batches)
    if not batches:
        raise ValueError("gradient matching needs at least one batch")
    if isinstance(children, bool) or not isinstance(children, int) or children < 1:
        raise ValueError(f"children must be a positive integer, got {children!r}")
    work = copy.deepcopy(model).train()  # its BN statistics, gradients and active child are throwaway
    params = [p for p in work.parameters() if p.requires_grad]
    generator = random.Random(derive_seed(seed, "gradient matching", dim.key))
    drawn = [draw_within(space, region, generator) for _ in range(children)]
    out: dict[Number, torch.Tensor] = {}
    for value in values:
        total = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64, device=params[0].device)
        for base in drawn:
            arch = space.with_values(base, {dim: value})
            work.set_arch(arch)
            for batch in batches:
                for p in params:
                    p.grad = None
                x, y = batch[0], batch[1]
                loss(work(resize_to(x, arch.resolution)), y).backward()
                total += torch.cat(
                    [
                        (p.grad if p.grad is not None else torch.zeros_like(p)).detach().double().flatten()
                        for p in params
                    ]
                )
        out[value] = mean_over_ranks(total / (children * len(batches)))
    return out


def draw_within(space: SearchSpace, region: Region, generator: random.Random) -> Arch:
    """A uniformly random child of the part of ``space`` that ``region`` allows: a child of the
    whole space (the same draw as ``space.sample``), each restricted value it lacks redrawn."""
    arch = space.sample(generator)
    redrawn = {}
    for dim, allowed in region.items():
        if space.value(arch, dim) not in allowed:
            redrawn[dim] = allowed[generator.randrange(len(allowed))]
    return space.with_values(arch, redrawn) if redrawn else arch


def similarity_matrix(gradients: Sequence[torch.Tensor]) -> np.ndarray:
    """Cosine similarity between every two gradients (1 on the diagonal; 0 against a zero gradient)."""
    stacked = torch.stack([g.double() for g in gradients])
    norms = stacked.norm(dim=1)
    sim = (stacked @ stacked.T) / torch.clamp(norms[:, None] * norms[None, :], min=1e-300)
    sim[norms == 0, :] = 0.0
    sim[:, norms == 0] = 0.0
    sim.fill_diagonal_(1.0)
    return sim.cpu().numpy()


def min_cut(similarity: np.ndarray) -> tuple[list[list[int]], float]:
    """The partition of the graph's nodes into two non-empty groups whose cross-group similarities
    sum lowest, and that sum. Exhaustive (2^(n-1) - 1 groupings: dimensions have a handful of
    values); the first grouping in lexicographic order wins a tie, and node 0 is in the first group."""
    sim = np.asarray(similarity, dtype=float)
    n = len(sim)
    if n < 2 or sim.shape != (n, n):
        raise ValueError(f"min_cut needs a square similarity matrix of at least 2 nodes, got shape {sim.shape}")
    best: tuple[float, list[list[int]]] | None = None
    for mask in itertools.product((0, 1), repeat=n - 1):
        side = (0, *mask)
        if all(s == 0 for s in side):
            continue
        groups = [[i for i in range(n) if side[i] == g] for g in (0, 1)]
        cut = float(sum(sim[i, j] for i in groups[0] for j in groups[1]))
        if best is None or cut < best[0] - 1e-12:
            best = (cut, groups)
    assert best is not None
    return best[1], best[0]


@dataclass(frozen=True)
class Split:
    """A split of the supernet along ``dimension``: its values in two ``groups``, with the measured
    ``similarity`` of their gradients and the ``cut`` (mean similarity across the groups)."""

    dimension: str
    groups: tuple[tuple[Number, ...], ...]
    similarity: tuple[tuple[float, ...], ...]
    cut: float


def split_of(dimension: Dimension, gradients: dict[Number, torch.Tensor]) -> Split:
    """The min-cut split of one dimension from its values' mean gradients (the values measured)."""
    values = [v for v in dimension.choices if v in gradients]
    sim = similarity_matrix([gradients[v] for v in values])
    groups, cut = min_cut(sim)
    crossing = len(groups[0]) * len(groups[1])
    return Split(
        dimension.key,
        tuple(tuple(values[i] for i in g) for g in groups),
        tuple(tuple(round(float(s), 12) for s in row) for row in sim),
        cut / crossing,
    )


def candidate_dimensions(
    space: SearchSpace, dimensions: Sequence[str], region: Region | None = None
) -> list[Dimension]:
    """The dimensions named in ``dimensions`` (each checked) that keep two values or more in ``region``."""
    region = dict(region or {})
    named = [split_dimension(space, key) for key in dimensions]
    return [dim for dim in named if len(region.get(dim, dim.choices)) > 1]


def choose_split(
    model: nn.Module,
    dimensions: Sequence[str],
    batches: Iterable[Sequence[torch.Tensor]],
    children: int = 4,
    seed: int = 0,
    region: Region | None = None,
) -> tuple[Split, list[Split]]:
    """Measure every candidate dimension and return the split of the one whose values disagree most
    (the lowest mean similarity across its cut; ties to the first listed), and every candidate's split.
    With ``region``, inside that part of the space; a dimension it leaves one value is no candidate."""
    region = dict(region or {})
    candidates = candidate_dimensions(model.space, dimensions, region)
    if not candidates:
        raise ValueError("choose_split needs at least one candidate dimension with two values to split")
    batches = list(batches)
    splits = [
        split_of(dim, value_gradients(model, dim.key, batches, children, seed, region=region)) for dim in candidates
    ]
    best = min(range(len(splits)), key=lambda i: (splits[i].cut if math.isfinite(splits[i].cut) else math.inf, i))
    return splits[best], splits
