"""AlphaNet's adaptive alpha-divergence (Wang et al., ICML 2021).

Teacher ``p`` (detached), student ``q``::

    D_a(p || q) = 1 / (a (a - 1)) * sum_c q_c ((p_c / q_c)^a - 1)

``a -> 1`` gives KL(p||q), ``a -> 0`` gives KL(q||p). Per sample the larger of ``D_{a-}`` and
``D_{a+}`` is used. ``(p/q)^a`` is clipped to ``[0, clip]`` to bound the variance of the gradient.
The gradient is taken through the surrogate ``-sum_c q_c * rho_c * log q_c`` with
``rho = (p/q)^a / a + 1/(a(a-1))`` computed with the clipped ratio and no gradient: AlphaNet's
estimator. Where no ratio is clipped its gradient w.r.t. the student logits equals that of the
divergence; where the clip is active it does not equal the gradient of the clipped divergence
(which would be zero through a clipped ratio): the clip bounds the importance weight ``rho`` of the
estimator instead (tested against AlphaNet's formula). ``forward`` returns a tensor whose *value* is
the divergence and whose *gradient* is the surrogate's, so logs show the divergence (>= 0), not
the surrogate (which is often negative and confuses users of the reference code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.losses.distill import kl_divergence


def alpha_divergence(log_p: torch.Tensor, log_q: torch.Tensor, alpha: float, clip: float | None = None) -> torch.Tensor:
    """Per-sample ``D_alpha(p || q)`` from log-probabilities (``alpha`` not 0 or 1)."""
    ratio = torch.exp(alpha * (log_p - log_q))
    if clip is not None:
        ratio = ratio.clamp(0.0, clip)
    return (log_q.exp() * (ratio - 1.0)).sum(-1) / (alpha * (alpha - 1.0))


def _surrogate(log_p: torch.Tensor, log_q: torch.Tensor, alpha: float, clip: float) -> torch.Tensor:
    with torch.no_grad():
        q = log_q.exp()
        ratio = torch.exp(alpha * (log_p - log_q)).clamp(0.0, clip)
        rho = ratio / alpha + 1.0 / (alpha * (alpha - 1.0))
    return -(q * rho * log_q).sum(-1)


class AdaptiveAlphaDivergence(nn.Module):
    def __init__(self, alpha_min: float = -1.0, alpha_max: float = 1.0, clip: float = 5.0):
        super().__init__()
        for name, a in (("alpha_min", alpha_min), ("alpha_max", alpha_max)):
            if a == 0.0:
                raise ValueError(
                    f"distill.{name}=0 is the KL(q||p) limit, which this loss does not compute; "
                    "use a small non-zero value instead"
                )
        self.alpha_min, self.alpha_max, self.clip = alpha_min, alpha_max, clip

    def _divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, alpha: float) -> torch.Tensor:
        if alpha == 1.0:  # the limit: KL(p || q)
            return kl_divergence(log_p, log_q)
        return alpha_divergence(log_p, log_q, alpha, self.clip)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        log_q = F.log_softmax(student_logits, dim=-1)
        log_p = F.log_softmax(teacher_logits.detach(), dim=-1)
        with torch.no_grad():
            d_min = self._divergence(log_p, log_q, self.alpha_min)
            d_max = self._divergence(log_p, log_q, self.alpha_max)
            use_max = d_max >= d_min
            value = torch.where(use_max, d_max, d_min)
        surrogate = torch.where(
            use_max,
            self._surrogate_or_kl(log_p, log_q, self.alpha_max),
            self._surrogate_or_kl(log_p, log_q, self.alpha_min),
        )
        # value of the divergence, gradient of the surrogate
        return surrogate + (value - surrogate).detach()

    def _surrogate_or_kl(self, log_p, log_q, alpha):
        if alpha == 1.0:  # KL is its own surrogate
            return kl_divergence(log_p, log_q)
        return _surrogate(log_p, log_q, alpha, self.clip)
