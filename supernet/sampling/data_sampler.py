"""PA&DA importance sampling of training data (CVPR 2023), as a ``torch.utils.data.Sampler``.

Each training sample has a score ``d_i``: for a child trained on labels the norm of the gradient
of cross-entropy w.r.t. its logits, ``||softmax(z_i) - onehot(y_i)||``; for a distilled child
``||softmax(z_student) - softmax(z_teacher)||`` — both from the training forward pass, no extra
pass. Repeated draws average with factor ``ema`` (0.5). At the end of an epoch
``p_i = tau * d_i / sum(d) + (1 - tau) / N`` and the next epoch draws ``N`` indices with
replacement from ``p``. A sample the epoch did not draw (about 1/e of them: the draws are with
replacement) keeps the score of its last draw, and one never drawn gets the mean score: scoring
them 0 (the first build) left them only ``(1 - tau) / N``, which starved a third of the data and
doubled the variance of the importance-weighted gradient late in training (``benchmarks/
pada_variance.py``). The paper applies no importance weights (a biased resampling);
``reweight=True`` gives each sample the weight ``1 / (N p_i)`` (normalised per batch by the loss).

Distributed: every rank draws the same index list from a generator seeded with (seed, epoch) and
takes its shard ``indices[rank::world]``; scores are averaged across ranks before the update.
"""

from __future__ import annotations

from typing import Any

import torch

from supernet.distributed import ShardedSampler, masked_mean_over_ranks
from supernet.sampling.pada import tau_at


class PadaDataSampler(ShardedSampler):
    def __init__(
        self, num_samples: int, seed: int = 0, ema: float = 0.5, tau_schedule: str = "linear", reweight: bool = False
    ):
        super().__init__(num_samples, seed)
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0.0 <= ema < 1.0:
            raise ValueError(f"data_sampler.ema must be in [0, 1), got {ema!r}")
        if tau_schedule not in ("linear", "constant"):
            raise ValueError(f"data_sampler.tau_schedule must be 'linear' or 'constant', got {tau_schedule!r}")
        self.ema, self.tau_schedule, self.reweight = ema, tau_schedule, reweight
        self.probs = torch.full((num_samples,), 1.0 / num_samples, dtype=torch.float64)
        self.scores = torch.zeros(num_samples, dtype=torch.float64)  # this epoch's
        self.seen = torch.zeros(num_samples, dtype=torch.bool)
        self.last = torch.zeros(num_samples, dtype=torch.float64)  # each sample's score when last drawn
        self.known = torch.zeros(num_samples, dtype=torch.bool)  # drawn in some epoch so far

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
        seen = masked_mean_over_ranks(self.seen.double(), self.seen) > 0  # drawn on some rank
        self.last = torch.where(seen, masked_mean_over_ranks(self.scores * self.seen, self.seen), self.last)
        self.known |= seen
        fill = self.last[self.known].mean() if self.known.any() else torch.tensor(0.0, dtype=torch.float64)
        scores = torch.where(self.known, self.last, fill)
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
        return {
            "seed": self.seed,
            "probs": self.probs.clone(),
            "scores": self.scores.clone(),
            "seen": self.seen.clone(),
            "last": self.last.clone(),
            "known": self.known.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["probs"].numel() != self.num_samples:
            raise ValueError("PA&DA data sampler state was saved for a training set of another size")
        self.seed = int(state["seed"])
        self.probs, self.scores, self.seen = state["probs"].double(), state["scores"].double(), state["seen"].bool()
        # checkpoints of the first build kept no scores across epochs: start carrying them now
        self.last = state.get("last", torch.zeros_like(self.scores)).double()
        self.known = state.get("known", torch.zeros_like(self.seen)).bool()


def sample_scores(
    logits: torch.Tensor, target: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """PA&DA data score per sample: norm of d(loss)/d(logits) of CE (labels) or of the soft
    cross-entropy to the teacher."""
    probs = logits.detach().float().softmax(-1)
    if teacher_logits is not None:
        ref = teacher_logits.detach().float().softmax(-1)
    else:
        ref = torch.nn.functional.one_hot(target, probs.shape[-1]).float()
    return (probs - ref).norm(dim=-1)
