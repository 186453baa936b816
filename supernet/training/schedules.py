"""Per-step learning-rate factors: linear warm-up, then cosine or exponential decay with a floor.

Returned as a function of the step for ``torch.optim.lr_scheduler.LambdaLR``; written by hand
because neither torch nor timm offers BigNAS's "exponential decay, then constant at 5% of peak"
as a per-step schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_factor(
    name: str,
    total_steps: int,
    warmup_steps: int = 0,
    final_ratio: float = 0.0,
    steps_per_epoch: int = 1,
    decay_rate: float = 0.97,
    decay_epochs: float = 2.4,
) -> Callable[[int], float]:
    """``cosine``: warm-up then cosine from 1 to ``final_ratio``. ``exponential``: warm-up then
    ``decay_rate ** (epochs / decay_epochs)``, held at ``final_ratio`` once it gets there (BigNAS).
    ``constant``: warm-up then 1."""
    if name not in ("cosine", "exponential", "constant"):
        raise ValueError(f"model.schedule.name must be one of cosine, exponential, constant; got {name!r}")
    if not 0.0 <= final_ratio <= 1.0:
        raise ValueError(f"model.schedule.final_ratio must be in [0, 1], got {final_ratio}")
    total_steps = max(total_steps, 1)
    warmup_steps = min(max(warmup_steps, 0), total_steps - 1) if total_steps > 1 else 0

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = step - warmup_steps
        if name == "constant":
            return 1.0
        if name == "cosine":
            progress = min(t / max(total_steps - warmup_steps, 1), 1.0)
            return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return max(final_ratio, decay_rate ** (t / steps_per_epoch / decay_epochs))

    return factor
