"""Once-for-All's progressive shrinking (issue 17): phases open the elastic fields at the configured
steps, the full network teaches, and a run resumed mid-phase is the uninterrupted run."""

import pytest
from helpers import supernet_weights, train
from test_train import _periodic

from supernet.sampling import ProgressiveShrinkingSampler, StepInfo
from supernet.space import Arch

PHASES = [
    {"start": 0.0, "open": []},
    {"start": 0.25, "open": ["kernel"]},
    {"start": 0.5, "open": ["kernel", "depth"]},
    {"start": 0.75, "open": ["kernel", "depth", "expand", "width", "stem", "head", "resolution"]},
]


def varied_fields(space, arch: Arch) -> set[str]:
    """The fields in which ``arch`` is not at its largest choice."""
    return {d.field for d in space.dimensions if space.value(arch, d) != d.choices[-1]}


def test_phases_open_their_fields_at_their_start(tiny_space):
    sampler = ProgressiveShrinkingSampler(tiny_space, seed=0, phases=PHASES, num_random=2)
    total = 40
    seen = {i: set() for i in range(len(PHASES))}
    for step in range(total):
        info = StepInfo(step, progress=step / total)
        phase = sampler.phase(info)
        assert phase == sum(step >= p["start"] * total for p in PHASES) - 1  # changes at steps 10, 20, 30
        children = sampler.children(info)
        assert children[0].role == "teacher" and children[0].arch == tiny_space.max()
        assert len(children) == (1 if phase == 0 else 3)
        for child in children[1:]:
            assert child.role == "student" and varied_fields(tiny_space, child.arch) <= set(PHASES[phase]["open"])
            seen[phase] |= varied_fields(tiny_space, child.arch)
    assert seen[1] == {"kernel"} and seen[2] == {"kernel", "depth"} and len(seen[3]) > 3


@pytest.mark.parametrize(
    "phases, message",
    [
        ([{"start": 0.2, "open": []}], "must start with a phase at start=0"),
        ([{"start": 0.0, "open": ["kernels"]}], r"open names \['kernels'\]"),
        ([{"start": 0.0, "open": ["kernel"]}, {"start": 0.5, "open": ["depth"]}], r"closes \['kernel'\]"),
        ([{"start": 0.0, "open": []}, {"start": 0.0, "open": ["kernel"]}], "must come after"),
        (
            [{"start": 0.0, "open": []}, {"start": 1.0, "open": ["kernel"]}],
            r"must be a fraction of training in \[0, 1\)",
        ),
        ([{"start": 0.0}], "exactly 'start' and 'open'"),
    ],
)
def test_bad_phases_are_refused(tiny_space, phases, message):
    with pytest.raises(ValueError, match=message):
        ProgressiveShrinkingSampler(tiny_space, phases=phases)


def test_phase_changes_happen_at_the_configured_steps_and_survive_a_resume(tmp_path):
    """12 steps, phases at 0, 1/4, 1/2, 3/4: changes at steps 3, 6 and 9, in the uninterrupted run
    and in one resumed at step 5 (mid-phase), which ends with the same weights."""
    phases = "[" + ",".join(f"{{start:{p['start']},open:[{','.join(p['open'])}]}}" for p in PHASES) + "]"
    common = [
        "sampler=progressive_shrinking",
        f"sampler.phases={phases}",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=4",
        "trainer.deterministic=true",
        "test_after_fit=false",
        *_periodic(5),
    ]
    full = train(tmp_path / "full", common)
    resumed = train(tmp_path / "resumed", [*common, f"ckpt_path={tmp_path / 'full' / 'steps' / 'step5.ckpt'}"])
    space = full["module"].space
    for run, steps in ((full, range(12)), (resumed, range(5, 12))):
        recorder = next(c for c in run["trainer"].callbacks if type(c).__name__ == "ChildRecorder")
        assert sorted(recorder.steps) == list(steps)
        for step in steps:
            phase = step // 3
            archs = [Arch.parse(a) for a in recorder.steps[step]]
            assert len(archs) == (1 if phase == 0 else 3), step
            assert all(varied_fields(space, a) <= set(PHASES[phase]["open"]) for a in archs), step
    rec = lambda run: next(c for c in run["trainer"].callbacks if type(c).__name__ == "ChildRecorder").steps
    assert {s: rec(full)[s] for s in range(5, 12)} == rec(resumed)
    a, b = supernet_weights(full), supernet_weights(resumed)
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6
