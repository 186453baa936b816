"""Label-smoothed cross-entropy and in-place knowledge distillation (soft cross-entropy / KL).

Every loss returns per-sample values (``reduction='none'``) so the caller can weight samples
(PA&DA importance weights) before averaging, and exposes ``logged_value`` — the number a user
should see in the logs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabelSmoothingCE(nn.Module):
    def __init__(self, smoothing: float = 0.1):
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, reduction="none", label_smoothing=self.smoothing)


class KLDistillation(nn.Module):
    """``T^2 * KL(softmax(t/T) || softmax(s/T))`` per sample.

    With ``T = 1`` its gradient equals that of the soft cross-entropy of BigNAS/AttentiveNAS
    (they differ by the teacher's entropy, a constant); KL is logged because it is 0 when the
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
        return (t * t) * (log_p.exp() * (log_p - log_q)).sum(-1)
