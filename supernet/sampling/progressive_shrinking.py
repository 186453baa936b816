"""Once-for-All's progressive shrinking as an arch sampler: phases that open the elastic dimensions
in turn (Cai et al., ICLR 2020).

Each phase starts at a fraction of training (``start``) and names the fields it samples (``open``,
e.g. ``[kernel]``, then ``[kernel, depth]``, then ``[kernel, depth, expand, width]``); every other
dimension stays at its largest choice. Each step trains the full network (the max child, on
labels: the teacher) and ``num_random`` children drawn in the open fields, which learn from it by
in-place distillation. A phase with nothing open trains the full network alone (OFA's first phase).

Departures from OFA, for one training module shared with the sandwich rule: the teacher is the full
network as it keeps training (in-place, as BigNAS), not a frozen copy of the first phase's
network; and a phase opens all the choices of its fields at once (OFA opens depth 4-3 before 4-3-2).
The phase depends on the training progress only (the global step over the total): a resumed run is
in the phase an uninterrupted one would be, and every rank is in the same one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from supernet.sampling.arch_samplers import ArchSampler, Child, StepInfo, step_generator
from supernet.space import Arch, SearchSpace


@dataclass(frozen=True)
class Phase:
    start: float  # fraction of training at which the phase begins
    open: tuple[str, ...]  # the fields sampled in this phase


def _phases(space: SearchSpace, phases: Sequence[Mapping[str, Any]]) -> list[Phase]:
    fields = sorted({d.field for d in space.dimensions if len(d.choices) > 1})
    out: list[Phase] = []
    for i, phase in enumerate(phases):
        if not isinstance(phase, Mapping) or set(phase) != {"start", "open"}:
            raise ValueError(f"sampler.phases[{i}]={phase!r} must be a mapping with exactly 'start' and 'open'")
        start, open_ = phase["start"], list(phase["open"] or [])
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0.0 <= start < 1.0:
            raise ValueError(f"sampler.phases[{i}].start={start!r} must be a fraction of training in [0, 1)")
        unknown = sorted(set(open_) - set(fields))
        if unknown:
            raise ValueError(f"sampler.phases[{i}].open names {unknown}: the elastic fields of this space are {fields}")
        if out and start <= out[-1].start:
            raise ValueError(f"sampler.phases[{i}].start={start} must come after the previous phase's {out[-1].start}")
        if out and not set(out[-1].open) <= set(open_):
            raise ValueError(
                f"sampler.phases[{i}] closes {sorted(set(out[-1].open) - set(open_))}: a phase keeps what the "
                "previous phases opened (shrinking only opens)"
            )
        out.append(Phase(float(start), tuple(open_)))
    if not out or out[0].start != 0.0:
        raise ValueError("sampler.phases must start with a phase at start=0")
    return out


class ProgressiveShrinkingSampler(ArchSampler):
    """Progressive shrinking (see the module docstring): ``phases`` is a list of ``{start, open}``."""

    def __init__(
        self, space: SearchSpace, seed: int = 0, phases: Sequence[Mapping[str, Any]] = (), num_random: int = 2
    ):
        super().__init__(space, seed)
        if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 1:
            raise ValueError(f"sampler.num_random must be a positive integer, got {num_random!r}")
        self.phases, self.num_random = _phases(space, phases), num_random
        self._max = space.max()

    def phase(self, info: StepInfo) -> int:
        """The index of the phase that ``info``'s step trains in."""
        return max(i for i, p in enumerate(self.phases) if p.start <= info.progress)

    def draw_in(self, phase: Phase, generator) -> Arch:
        """A random child whose open fields are drawn and the others at their largest choice."""
        arch = self.space.sample(generator)
        closed = {d: d.choices[-1] for d in self.space.dimensions if d.field not in phase.open}
        return self.space.with_values(arch, closed)

    def children(self, info: StepInfo, candidate_losses: Sequence[float] | None = None) -> list[Child]:
        phase = self.phases[self.phase(info)]
        teacher = Child(self._max, "teacher", "max")
        if not phase.open:
            return [teacher]
        generator = step_generator(self.seed, info.step)
        students = [self.draw_in(phase, generator) for _ in range(self.num_random)]
        return [teacher, *(Child(a, "student", f"random{i}", sampled=True) for i, a in enumerate(students))]
