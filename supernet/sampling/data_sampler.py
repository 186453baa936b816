"""PA&DA importance sampling of training data (CVPR 2023), as a ``torch.utils.data.Sampler``.

Each training sample has a score ``d_i``: for a child trained on labels the norm of the gradient
of cross-entropy w.r.t. its logits, ``||softmax(z_i) - onehot(y_i)||``; for a distilled child
``||softmax(z_student) - softmax(z_teacher)||`` — both from the training forward pass, no extra
pass. Repeated draws average with factor ``ema`` (0.5); undrawn samples score 0. At the end of an
epoch ``p_i = tau * d_i / sum(d) + (1 - tau) / N`` and the next epoch draws ``N`` indices with
replacement from ``p``. The paper applies no importance weights (a biased resampling);
``reweight=True`` gives each sample the weight ``1 / (N p_i)`` (normalised per batch by the loss).

Distributed: every rank draws the same index list from a generator seeded with (seed, epoch) and
takes its shard ``indices[rank::world]``; scores are averaged across ranks before the update.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from supernet.sampling.pada import tau_at


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ShardedSampler(Sampler[int]):
    """Base: one global index list per epoch, sharded ``[rank::world]``; ``start`` skips indices of
    this rank's shard (mid-epoch resume, see ``supernet.data.ResumableDataLoader``)."""

    def __init__(self, num_samples: int, seed: int = 0):
        if num_samples <= 0:
            raise ValueError("the training set is empty")
        self.num_samples, self.seed, self.epoch, self.start = num_samples, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_indices(self) -> torch.Tensor:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return (index for index, _ in self.draws())

    def draws(self) -> Iterator[tuple[int, int]]:
        """This rank's ``(index, augmentation seed)`` pairs. The seed is a function of (seed, epoch,
        position in the global list) only, so a sample's random augmentation is the same whatever
        the number of ranks or workers, and after a resume (``supernet.data.SeededDraws``)."""
        rank, size = world()
        indices = self.global_indices().tolist()
        usable = len(indices) - len(indices) % size  # equal shard sizes: same number of steps per rank
        base = (self.seed * 1_000_003 + self.epoch) * 10_000_019
        for position in range(rank + self.start * size, usable, size):
            yield indices[position], (base + position) % (1 << 63)

    def __len__(self) -> int:
        return self.num_samples // world()[1]

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)


class PadaDataSampler(ShardedSampler):
    def __init__(self, num_samples: int, seed: int = 0, ema: float = 0.5, tau_schedule: str = "linear",
                 reweight: bool = False):
        super().__init__(num_samples, seed)
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0.0 <= ema < 1.0:
            raise ValueError(f"data_sampler.ema must be in [0, 1), got {ema!r}")
        if tau_schedule not in ("linear", "constant"):
            raise ValueError(f"data_sampler.tau_schedule must be 'linear' or 'constant', got {tau_schedule!r}")
        self.ema, self.tau_schedule, self.reweight = ema, tau_schedule, reweight
        self.probs = torch.full((num_samples,), 1.0 / num_samples, dtype=torch.float64)
        self.scores = torch.zeros(num_samples, dtype=torch.float64)
        self.seen = torch.zeros(num_samples, dtype=torch.bool)

    def global_indices(self) -> torch.Tensor:
        return torch.multinomial(self.probs, self.num_samples, replacement=True, generator=self.generator())

    def weights(self, indices: torch.Tensor) -> torch.Tensor | None:
        """Per-sample loss weights ``1 / (N p_i)`` when ``reweight`` is on, else ``None``."""
        if not self.reweight:
            return None
        return (1.0 / (self.num_samples * self.probs[indices.cpu()])).to(indices.device, torch.float32)

    @torch.no_grad()
    def update_scores(self, indices: torch.Tensor, scores: torch.Tensor) -> None:
        idx = indices.detach().cpu().long()
        new = scores.detach().double().cpu()
        # a sample drawn twice in one batch: keep the last occurrence (order is immaterial here)
        old = self.scores[idx]
        seen = self.seen[idx]
        self.scores[idx] = torch.where(seen, self.ema * old + (1 - self.ema) * new, new)
        self.seen[idx] = True

    def on_epoch_end(self, epoch: int, max_epochs: int) -> dict[str, float]:
        scores, seen = self.scores, self.seen.double()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            device = "cuda" if dist.get_backend() == "nccl" else "cpu"
            both = torch.stack([scores * seen, seen]).to(device)
            dist.all_reduce(both)
            scores = (both[0] / both[1].clamp(min=1)).cpu()
        tau = tau_at(self.tau_schedule, epoch, max_epochs)
        total = float(scores.sum())
        measured = scores / total if total > 0 else torch.full_like(scores, 1.0 / self.num_samples)
        self.probs = tau * measured + (1 - tau) / self.num_samples
        self.probs /= self.probs.sum()
        self.scores.zero_()
        self.seen.zero_()
        entropy = float(-(self.probs * self.probs.clamp_min(1e-300).log()).sum())
        return {"pada/data/entropy": entropy, "pada/data/max_prob_x_n": float(self.probs.max() * self.num_samples)}

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "probs": self.probs.clone(), "scores": self.scores.clone(),
                "seen": self.seen.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["probs"].numel() != self.num_samples:
            raise ValueError("PA&DA data sampler state was saved for a training set of another size")
        self.seed = int(state["seed"])
        self.probs, self.scores, self.seen = state["probs"].double(), state["scores"].double(), state["seen"].bool()


class UniformDataSampler(ShardedSampler):
    """A fresh permutation per epoch (seeded), sharded across ranks."""

    def global_indices(self) -> torch.Tensor:
        return torch.randperm(self.num_samples, generator=self.generator())


def sample_scores(logits: torch.Tensor, target: torch.Tensor | None = None,
                  teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
    """PA&DA data score per sample: norm of d(loss)/d(logits) of CE (labels) or of the soft
    cross-entropy to the teacher."""
    probs = logits.detach().float().softmax(-1)
    if teacher_logits is not None:
        ref = teacher_logits.detach().float().softmax(-1)
    else:
        ref = torch.nn.functional.one_hot(target, probs.shape[-1]).float()
    return (probs - ref).norm(dim=-1)
