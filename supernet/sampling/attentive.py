"""AttentiveNAS best-up / worst-up (CVPR 2021) for the random slots of the sandwich.

Per random slot: draw a target multiply-add budget uniformly over bins spanning [min, max] of the
space, draw ``k`` candidates whose analytic multiply-adds fall in that bin (rejection sampling from
the uniform space), score each on the current batch without gradients, and train the best
(lowest loss, ``best_up``) or the worst (``worst_up``). The scores come from the training module's
scorer, which averages them across ranks: every rank picks the same child (the reference code
scores on each rank's own batch, so ranks can silently train different children).
"""

from __future__ import annotations

import random

from supernet.metrics.complexity import complexity
from supernet.sampling.arch_samplers import SandwichSampler, StepInfo
from supernet.space import Arch, SearchSpace


class AttentiveSampler(SandwichSampler):
    def __init__(self, space: SearchSpace, seed: int = 0, num_random: int = 2, mode: str = "best_up",
                 num_candidates: int = 3, num_bins: int = 10, max_tries: int = 200, shrinking=None):
        super().__init__(space, seed, num_random, shrinking)
        if mode not in ("best_up", "worst_up"):
            raise ValueError(f"sampler.mode must be 'best_up' or 'worst_up', got {mode!r}")
        if num_candidates < 1 or num_bins < 1:
            raise ValueError("sampler.num_candidates and sampler.num_bins must be >= 1")
        self.mode, self.k, self.max_tries = mode, num_candidates, max_tries
        lo, hi = (complexity(space, a).macs for a in (space.min(), space.max()))
        self.edges = [lo + (hi - lo) * i / num_bins for i in range(num_bins + 1)]

    def _near_budget(self, gen: random.Random) -> list[Arch]:
        b = gen.randrange(len(self.edges) - 1)
        lo, hi = self.edges[b], self.edges[b + 1]
        found, fallback = [], []
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

    def random_children(self, generator: random.Random, info: StepInfo) -> list[Arch]:
        chosen = []
        for _ in range(self.num_random):
            candidates = self._near_budget(generator)
            if info.scorer is None or len(candidates) == 1:
                chosen.append(candidates[0])
                continue
            losses = info.scorer(candidates)
            pick = min if self.mode == "best_up" else max
            chosen.append(candidates[pick(range(len(candidates)), key=losses.__getitem__)])
        return chosen
