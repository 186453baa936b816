import math
import random

import pytest
import torch
from torch import nn

from supernet import distributed as distributed_module
from supernet.sampling import (
    AttentiveSampler,
    DelayedShrinking,
    PadaDataSampler,
    PadaPathSampler,
    SandwichSampler,
    StepInfo,
    StepResult,
    UniformDataSampler,
    UniformSampler,
    sample_scores,
    step_generator,
)
from supernet.training import GradientProbe


def test_sandwich_children_are_max_randoms_min(tiny_space):
    children = SandwichSampler(tiny_space, seed=0, num_random=2).children(StepInfo(5))
    assert [c.name for c in children] == ["max", "random0", "random1", "min"]
    assert [c.role for c in children] == ["teacher", "student", "student", "student"]
    assert children[0].arch == tiny_space.max() and children[-1].arch == tiny_space.min()


def test_children_are_a_function_of_seed_and_step(tiny_space):
    a = SandwichSampler(tiny_space, seed=3, num_random=3)
    b = SandwichSampler(tiny_space, seed=3, num_random=3)
    assert [a.children(StepInfo(s)) for s in range(20)] == [b.children(StepInfo(s)) for s in reversed(range(20))][::-1]
    drawn = {c.arch for s in range(20) for c in a.children(StepInfo(s))[1:-1]}
    assert len(drawn) > 30  # steps draw different children
    other = SandwichSampler(tiny_space, seed=4, num_random=3)
    assert [c.arch for c in other.children(StepInfo(0))] != [c.arch for c in a.children(StepInfo(0))]


def test_state_round_trip(tiny_space):
    a = SandwichSampler(tiny_space, seed=11)
    b = SandwichSampler(tiny_space, seed=0)
    b.load_state_dict(a.state_dict())
    assert a.children(StepInfo(7)) == b.children(StepInfo(7))


def test_uniform_sampler_single_student(tiny_space):
    (child,) = UniformSampler(tiny_space, seed=0).children(StepInfo(0))
    assert child.role == "student"


def test_bad_options(tiny_space):
    with pytest.raises(ValueError, match="num_random"):
        SandwichSampler(tiny_space, num_random=-1)
    with pytest.raises(ValueError, match="floor"):
        PadaPathSampler(tiny_space, floor=0.6)
    with pytest.raises(ValueError, match="mode"):
        AttentiveSampler(tiny_space, mode="middle_up")


def test_delayed_shrinking_trains_max_only_then_ramps(tiny_space):
    sampler = SandwichSampler(tiny_space, shrinking={"start": 0.5, "warmup": 0.2})
    assert [c.name for c in sampler.children(StepInfo(0, progress=0.3))] == ["max"]
    ramp = sampler.children(StepInfo(1, progress=0.6))
    assert len(ramp) == 4 and ramp[0].grad_scale == 1.0
    assert all(c.grad_scale == pytest.approx(0.5) for c in ramp[1:])
    assert all(c.grad_scale == 1.0 for c in sampler.children(StepInfo(2, progress=0.9)))
    assert DelayedShrinking(0.5, 0.0, 2.0).scale(0.5) == 2.0


def test_attentive_picks_best_or_worst_by_score(tiny_space):
    from supernet.metrics import complexity

    def scorer(archs):  # pretend bigger children have lower loss
        return [-complexity(tiny_space, a).macs for a in archs]

    best = AttentiveSampler(tiny_space, seed=0, num_random=1, mode="best_up", num_candidates=3)
    worst = AttentiveSampler(tiny_space, seed=0, num_random=1, mode="worst_up", num_candidates=3)
    for step in range(10):
        candidates = best._near_budget(step_generator(0, step))
        macs = [complexity(tiny_space, a).macs for a in candidates]
        assert best.candidates(StepInfo(step)) == candidates == worst.candidates(StepInfo(step))
        b = best.children(StepInfo(step), scorer(candidates))[1].arch
        w = worst.children(StepInfo(step), scorer(candidates))[1].arch
        assert complexity(tiny_space, b).macs == max(macs)
        assert complexity(tiny_space, w).macs == min(macs)


def test_attentive_budget_prior_follows_the_space(tiny_space):
    """``prior=space`` targets budgets as often as uniform archs have them (AttentiveNAS's prior):
    the common middle often, the rare extremes rarely; ``prior=uniform`` spreads the targets."""
    from collections import Counter

    from supernet.metrics import complexity

    def histogram(bins, n):
        counts = Counter(bins)
        return [counts[b] / n for b in range(10)]

    space_bins = AttentiveSampler(tiny_space)._bin
    gen = random.Random(1)
    reference = histogram([space_bins(complexity(tiny_space, tiny_space.sample(gen)).macs) for _ in range(2000)], 2000)
    for prior, close in (("space", True), ("uniform", False)):
        sampler, gen = AttentiveSampler(tiny_space, prior=prior), random.Random(0)
        targeted = [sampler._bin(complexity(tiny_space, sampler._near_budget(gen)[0]).macs) for _ in range(300)]
        distance = 0.5 * sum(abs(a - b) for a, b in zip(histogram(targeted, 300), reference))
        assert (distance < 0.1) == close, (prior, distance)


def _measure(sampler, probe, model, step, value=1.0) -> StepResult:
    """One random child's backward, as a step result."""
    child = sampler.children(StepInfo(step))[1]
    probe.start()
    (value * sum(p.sum() for p in model.parameters())).backward()
    stats = probe.stop()
    loss = torch.tensor(value)
    return StepResult(
        [child],
        {child.name: loss},
        {},
        finite=bool(torch.isfinite(stats).all() and torch.isfinite(loss)),
        grad_stats={child.name: stats},
    )


def _probe(sampler, model):
    return GradientProbe(model, sampler.space.num_stages)


def test_pada_measurements_of_a_skipped_step_are_dropped(tiny_space):
    """A step refused for non-finite values must not leave its (NaN/inf) measurements behind: the
    step says it is not finite, and only an applied step's result reaches the sampler."""
    sampler, model = PadaPathSampler(tiny_space, seed=0), _TwoStageModel()
    probe = _probe(sampler, model)
    skipped = _measure(sampler, probe, model, 0, value=float("inf"))
    assert not skipped.finite  # ... so the training loop skips the step: no on_step_end
    sampler.on_step_end(StepInfo(0), _measure(sampler, probe, model, 0))  # the retry of step 0
    assert all(math.isfinite(v) for row in sampler.estimates for v in row)
    assert sum(map(sum, sampler.seen)) == len(sampler.dims)  # one child measured, not two


class _TwoStageModel(nn.Module):
    """Parameters named like a supernet: stage 0, stage 1 and the rest (head)."""

    from supernet.models.base import Supernet

    stage_container = "stages"
    parameter_stages = Supernet.parameter_stages

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.head = nn.Linear(4, 1)


def test_pada_path_distribution_moves_toward_values_with_larger_gradients(tiny_space):
    sampler = PadaPathSampler(tiny_space, seed=0, importance="stage_norm")
    model = _TwoStageModel()
    probe = _probe(sampler, model)
    width = next(d for d in sampler.dims if d.key == "stages[1].width")
    gen = random.Random(0)
    for step in range(60):
        arch = sampler.draw(gen)
        child = sampler.children(StepInfo(step))[1].__class__(arch, "student", "random0", sampled=True)
        # constructed case: stage-1 gradients are 5x larger when stage 1 is at its widest choice
        scale = 5.0 if tiny_space.value(arch, width) == width.choices[-1] else 1.0
        probe.start()
        loss = sum(p.sum() for p in model.stages[0].parameters()) + scale * sum(
            p.sum() for p in model.stages[1].parameters()
        )
        loss.backward()
        result = StepResult(
            [child], {child.name: loss.detach()}, {}, finite=True, grad_stats={child.name: probe.stop()}
        )
        sampler.on_step_end(StepInfo(step), result)  # the step was applied: its measurements count
    logs = sampler.update(tau=1.0)
    probs = sampler.distributions()["stages[1].width"]
    assert probs[width.choices[-1]] == pytest.approx(5 / 6, rel=1e-6)
    assert probs[width.choices[0]] == pytest.approx(1 / 6, rel=1e-6)
    # dimensions whose values all saw equal gradients stay uniform
    for p in sampler.distributions()["stages[0].width"].values():
        assert p == pytest.approx(0.5)
    assert "pada/stages[1].width/entropy" in logs
    # the next draws follow the new distribution
    wide = sum(tiny_space.value(sampler.draw(gen), width) == width.choices[-1] for _ in range(600))
    assert 440 < wide < 560


def test_pada_tau_mixes_uniform_and_floor(tiny_space):
    sampler = PadaPathSampler(tiny_space, floor=0.2)
    k = next(i for i, d in enumerate(sampler.dims) if d.key == "stages[2].depth")
    sampler.estimates[k] = [1.0, 0.0, 0.0]
    sampler.seen[k] = [1, 0, 0]
    sampler.update(tau=0.5)
    p = sampler.probs[k]
    # tau mix gives [2/3, 1/6, 1/6]; the floor raises 1/6 to 0.2, then renormalises
    assert p == pytest.approx([(2 / 3) / (2 / 3 + 0.4), 0.2 / (2 / 3 + 0.4), 0.2 / (2 / 3 + 0.4)])
    sampler.estimates[k] = [1.0, 0.0, 0.0]
    sampler.seen[k] = [1, 0, 0]
    sampler.update(tau=1.0)
    assert min(sampler.probs[k]) >= 0.2 / (1 + 0.4) - 1e-9


def test_pada_path_state_round_trip(tiny_space):
    a = PadaPathSampler(tiny_space, seed=1)
    a.probs[3] = [0.9, 0.1][: len(a.probs[3])] if len(a.probs[3]) == 2 else a.probs[3]
    b = PadaPathSampler(tiny_space, seed=0)
    b.load_state_dict(a.state_dict())
    assert b.probs == a.probs and a.children(StepInfo(4)) == b.children(StepInfo(4))


def test_pada_data_probabilities_follow_scores():
    sampler = PadaDataSampler(10, seed=0)
    sampler.update_scores(torch.arange(10), torch.tensor([1.0] * 9 + [10.0]))
    sampler.update_scores(torch.tensor([9]), torch.tensor([30.0]))  # repeat: 0.5 * 10 + 0.5 * 30
    assert sampler.scores[9] == pytest.approx(20.0)
    sampler.on_epoch_end(epoch=1, max_epochs=2)  # tau = 0.5
    assert sampler.probs[9] == pytest.approx(0.5 * 20 / 29 + 0.05)
    assert sampler.probs[0] == pytest.approx(0.5 * 1 / 29 + 0.05)
    sampler.set_epoch(1)
    counts = torch.bincount(torch.tensor(list(sampler)), minlength=10)
    assert counts.sum() == 10
    draws = torch.cat([sampler.global_indices() for sampler.epoch in range(2, 200)])
    assert (draws == 9).float().mean() == pytest.approx(float(sampler.probs[9]), abs=0.03)
    sampler.reweight = True
    w = sampler.weights(torch.tensor([0, 9]))
    assert w[0] > 1 > w[1]


def test_pada_data_keeps_the_scores_of_samples_an_epoch_did_not_draw():
    """Draws are with replacement, so an epoch misses about a third of the samples: they keep the
    score of their last draw (never drawn: the mean score) instead of falling to (1 - tau) / N."""
    sampler = PadaDataSampler(4, seed=0, tau_schedule="constant")
    sampler.update_scores(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 3.0]))  # 3 never drawn
    sampler.on_epoch_end(epoch=0, max_epochs=4)
    assert sampler.probs.tolist() == pytest.approx([1 / 8, 2 / 8, 3 / 8, 2 / 8])
    sampler.update_scores(torch.tensor([1]), torch.tensor([6.0]))  # only 1 drawn this epoch
    sampler.on_epoch_end(epoch=1, max_epochs=4)
    assert sampler.probs.tolist() == pytest.approx([3 / 40, 18 / 40, 9 / 40, 10 / 40])  # 3: mean of 1, 6, 3
    restored = PadaDataSampler(4, seed=0, tau_schedule="constant")
    restored.load_state_dict(sampler.state_dict())  # a resume carries the old scores on
    for s in (sampler, restored):
        s.on_epoch_end(epoch=2, max_epochs=4)
    assert torch.equal(sampler.probs, restored.probs)


@pytest.mark.parametrize("cls", [PadaDataSampler, UniformDataSampler])
def test_shards_are_disjoint_and_cover_the_drawn_list(cls, monkeypatch):
    sampler = cls(101, seed=3)
    sampler.set_epoch(2)
    drawn = sampler.global_indices()
    shards = []
    for rank in range(2):
        monkeypatch.setattr(distributed_module, "rank_and_world", lambda rank=rank: (rank, 2))
        shards.append(list(sampler))
        assert len(sampler) == 50
    positions = [set(range(r, 100, 2)) for r in range(2)]
    assert positions[0].isdisjoint(positions[1]) and positions[0] | positions[1] == set(range(100))
    assert shards[0] == drawn[0:100:2].tolist() and shards[1] == drawn[1:100:2].tolist()


def test_sample_scores():
    logits = torch.tensor([[10.0, -10.0], [0.0, 0.0]])
    s = sample_scores(logits, torch.tensor([0, 0]))
    assert s[0] < 1e-6 and s[1] == pytest.approx((0.5**2 * 2) ** 0.5)
    assert sample_scores(logits, teacher_logits=logits).abs().max() < 1e-6


def test_tau_is_e_over_e_as_the_reference_code():
    """After epoch e (0-based) of E the update mixes tau = e / E: the first update is a no-op and
    tau never reaches 1."""
    from supernet.sampling.pada import tau_at

    assert [tau_at("linear", e, 4) for e in range(4)] == [0.0, 0.25, 0.5, 0.75]
    assert tau_at("constant", 0, 4) == 1.0
    sampler = PadaDataSampler(4, seed=0)
    sampler.update_scores(torch.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    sampler.on_epoch_end(epoch=0, max_epochs=4)
    assert torch.allclose(sampler.probs, torch.full((4,), 0.25, dtype=torch.float64))


@pytest.mark.parametrize("rule", ["child_norm", "stage_norm", "stage_rms"])
def test_pada_importance_rules_equal_a_hand_computation(tiny_space, rule):
    """One sampled child's gradient on the two-stage toy model, folded by each rule."""
    sampler, model = PadaPathSampler(tiny_space, seed=0, importance=rule), _TwoStageModel()
    probe = _probe(sampler, model)
    child = sampler.children(StepInfo(0))[1]
    probe.start()
    loss = (
        sum(p.sum() for p in model.stages[0].parameters())
        + 3 * sum(p.sum() for p in model.stages[1].parameters())
        + 2 * sum(p.sum() for p in model.head.parameters())
    )
    loss.backward()
    result = StepResult([child], {child.name: loss.detach()}, {}, finite=True, grad_stats={child.name: probe.stop()})
    sampler.on_step_end(StepInfo(0), result)
    n = [sum(p.numel() for p in m.parameters()) for m in (model.stages[0], model.stages[1], model.head)]
    sq = [n[0] * 1.0, n[1] * 9.0, n[2] * 4.0]  # every gradient entry is 1, 3 or 2
    by_rule = {
        "child_norm": (math.sqrt(sum(sq)),) * 3,
        "stage_norm": (math.sqrt(sq[0]), math.sqrt(sq[1]), math.sqrt(sum(sq))),
        "stage_rms": (1.0, 3.0, math.sqrt(sum(sq) / sum(n))),
    }
    stage0, stage1, whole = by_rule[rule]
    stage_values = (stage0, stage1, whole if rule == "child_norm" else 0.0)  # the toy has no stage 2
    for k, dim in enumerate(sampler.dims):
        value = dim.choices.index(tiny_space.value(child.arch, dim))
        expected = whole if dim.stage is None else stage_values[dim.stage]
        assert sampler.estimates[k][value] == pytest.approx(expected)
    with pytest.raises(ValueError, match="sampler.importance"):
        PadaPathSampler(tiny_space, importance="rms")


def test_single_path_samplers(tiny_space):
    """SPOS: one child per step, trained on labels (no teacher), drawn from (seed, step) only —
    the same on every rank and after a resume; the PA&DA variant draws from its distribution."""
    from supernet.sampling import PadaSinglePathSampler

    for cls in (UniformSampler, PadaSinglePathSampler):
        a, b = cls(tiny_space, seed=5), cls(tiny_space, seed=0)
        (child,) = a.children(StepInfo(3))
        assert child.role == "student" and child.sampled
        b.load_state_dict(a.state_dict())
        assert [a.children(StepInfo(s)) for s in range(10)] == [b.children(StepInfo(s)) for s in range(10)]
    pada = PadaSinglePathSampler(tiny_space, seed=0)
    assert pada.measures_gradients
    k = next(i for i, d in enumerate(pada.dims) if d.key == "stages[1].width")
    pada.probs[k] = [0.0, 1.0]
    assert all(c.arch.stages[1]["width"] == 24 for s in range(20) for c in pada.children(StepInfo(s)))


def test_attentive_fixed_width_bins(tiny_space):
    from supernet.metrics import complexity

    lo, hi = (complexity(tiny_space, a).macs for a in (tiny_space.min(), tiny_space.max()))
    sampler = AttentiveSampler(tiny_space, bin_macs=1e6)
    assert sampler.edges[0] == lo and sampler.edges[-1] == hi
    assert all(b - a == pytest.approx(1e6) for a, b in zip(sampler.edges[:-2], sampler.edges[1:-1]))
    with pytest.raises(ValueError, match="sampler.bin_macs"):
        AttentiveSampler(tiny_space, bin_macs=-1)
