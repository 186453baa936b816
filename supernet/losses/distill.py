"""Label-smoothed cross-entropy and in-place knowledge distillation (KL to the teacher's soft targets).

Every loss returns per-sample values (``reduction='none'``) so the caller can weight samples
(PA&DA importance weights) before averaging. Their values are what the logs show: a distillation
loss is a divergence, 0 when the student matches the teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(p || q)`` from log-probabilities over the last dimension."""
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)


class LabelSmoothingCE(nn.Module):
    def __init__(self, smoothing: float = 0.1):
        super().__init__()
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing < 1.0:
            raise ValueError(f"model.label_smoothing={smoothing!r} must be a number in [0, 1)")
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, reduction="none", label_smoothing=self.smoothing)


class KLDistillation(nn.Module):
    """``T^2 * KL(softmax(t/T) || softmax(s/T))`` per sample.

    With ``T = 1`` its gradient equals that of the soft cross-entropy of BigNAS/AttentiveNAS
    (they differ by the teacher's entropy, a constant); KL is computed because it is 0 when the
    student matches the teacher.
    """

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"distill.temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        log_q = F.log_softmax(student_logits / t, dim=-1)
        log_p = F.log_softmax(teacher_logits.detach() / t, dim=-1)
        return (t * t) * kl_divergence(log_p, log_q)
