"""AttentiveNAS best-up / worst-up (CVPR 2021) for the random slots of the sandwich.

Per random slot: draw a target multiply-add budget — one of ``num_bins`` equal bins spanning
[min, max] of the space, or bins ``bin_macs`` wide (AttentiveNAS: 25 M) — from a prior, draw
``k`` candidates whose analytic multiply-adds fall in
that bin (rejection sampling from the uniform space), score each on the current batch without
gradients, and train the best (lowest loss, ``best_up``) or the worst (``worst_up``). The
candidates go to the step through ``candidates()``; the step scores them and averages the losses
across ranks, so every rank picks the same child (the reference code scores on each rank's own
batch, so ranks can silently train different children).

The prior (``prior``): ``space`` (default, as AttentiveNAS) is the distribution of multiply-adds
of uniformly drawn archs — the bin of one uniform draw is the target, so common budgets are
targeted often and rare extremes rarely; ``uniform`` gives every bin the same chance.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence

from supernet.metrics.complexity import complexity
from supernet.sampling.arch_samplers import SandwichSampler, StepInfo, step_generator
from supernet.space import Arch, SearchSpace


class AttentiveSampler(SandwichSampler):
    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        num_random: int = 2,
        mode: str = "best_up",
        num_candidates: int = 3,
        num_bins: int = 10,
        bin_macs: float | None = None,
        prior: str = "space",
        max_tries: int = 200,
        shrinking=None,
    ):
        super().__init__(space, seed, num_random, shrinking)
        if mode not in ("best_up", "worst_up"):
            raise ValueError(f"sampler.mode must be 'best_up' or 'worst_up', got {mode!r}")
        if num_candidates < 1 or num_bins < 1:
            raise ValueError("sampler.num_candidates and sampler.num_bins must be >= 1")
        if prior not in ("space", "uniform"):
            raise ValueError(f"sampler.prior must be 'space' or 'uniform', got {prior!r}")
        self.mode, self.k, self.prior, self.max_tries = mode, num_candidates, prior, max_tries
        if bin_macs is not None and not bin_macs > 0:
            raise ValueError(f"sampler.bin_macs must be a positive number of multiply-adds or null, got {bin_macs}")
        lo, hi = (complexity(space, a).macs for a in (space.min(), space.max()))
        if bin_macs is None:  # num_bins equal bins spanning [min, max]
            self.edges = [lo + (hi - lo) * i / num_bins for i in range(num_bins + 1)]
        else:  # bins of bin_macs from the min child up (AttentiveNAS: 25 M); the last one ends at max
            self.edges = [lo + bin_macs * i for i in range(math.ceil((hi - lo) / bin_macs))] + [hi]
        self._slots: tuple[int, list[list[Arch]]] | None = None  # (step, candidates of each random slot)

    def _bin(self, macs: float) -> int:
        return min(max(bisect.bisect_right(self.edges, macs) - 1, 0), len(self.edges) - 2)

    def _near_budget(self, gen: random.Random) -> list[Arch]:
        found, fallback = [], []
        if self.prior == "space":
            first = self.space.sample(gen)
            b = self._bin(complexity(self.space, first).macs)
            found.append(first)
        else:
            b = gen.randrange(len(self.edges) - 1)
        lo, hi = self.edges[b], self.edges[b + 1]
        if len(found) == self.k:
            return found
        for _ in range(self.max_tries):
            arch = self.space.sample(gen)
            macs = complexity(self.space, arch).macs
            if lo <= macs <= hi:
                found.append(arch)
                if len(found) == self.k:
                    return found
            fallback.append((abs(macs - (lo + hi) / 2), arch))
        # rare bins: complete with the candidates closest to the bin centre
        fallback.sort(key=lambda t: t[0])
        return found + [a for _, a in fallback[: self.k - len(found)]]

    def _candidate_slots(self, info: StepInfo) -> list[list[Arch]]:
        """The candidates of each random slot of this step (drawn once per step, from its seed)."""
        if self._slots is None or self._slots[0] != info.step:
            generator = step_generator(self.seed, info.step)
            self._slots = (info.step, [self._near_budget(generator) for _ in range(self.num_random)])
        return self._slots[1]

    def candidates(self, info: StepInfo) -> list[Arch]:
        if self.shrinking_scale(info) == 0.0:
            return []
        return [arch for slot in self._candidate_slots(info) if len(slot) > 1 for arch in slot]

    def random_children(self, info: StepInfo, candidate_losses: Sequence[float] | None) -> list[Arch]:
        losses = iter(candidate_losses or ())
        pick = min if self.mode == "best_up" else max
        chosen = []
        for slot in self._candidate_slots(info):
            if candidate_losses is None or len(slot) == 1:
                chosen.append(slot[0])
                continue
            scores = [next(losses) for _ in slot]
            chosen.append(slot[pick(range(len(slot)), key=scores.__getitem__)])
        return chosen
