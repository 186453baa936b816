"""``StepResult``: what one training step tells the samplers (their only feedback channel)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from supernet.sampling.arch_samplers import Child


@dataclass
class StepResult:
    """The outcome of one sandwich step (``supernet.training.step.SandwichStep``).

    ``losses`` and ``logits`` are per child (by ``Child.name``), detached. ``grad_stats`` holds,
    for each child the step was asked to measure (``ArchSampler.measures_gradients`` and
    ``Child.sampled``), a ``(2, num_stages + 1)`` float64 tensor: the sum of squared gradient
    entries and the number of non-zero entries of that child's backward pass, per stage (the last
    column: stem, head and other shared weights), for the child's own loss (the accumulation
    scale and ``Child.grad_scale`` that multiplied it in the backward pass divided out). ``sample_scores`` is the
    PA&DA data score of every sample of the batch, averaged over the children (when asked for).
    ``finite`` is False when any loss or gradient on any rank was not finite: the step was then
    not applied and samplers must not learn from it.
    """

    children: list[Child]
    losses: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    finite: bool
    grad_stats: dict[str, torch.Tensor] = field(default_factory=dict)
    sample_scores: torch.Tensor | None = None
