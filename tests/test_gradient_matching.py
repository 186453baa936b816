"""Gradient matching (issue 17, item 1, first part): the values' mean gradients, their similarity
graph and its minimum cut, deterministic from the measured gradients."""

import numpy as np
import pytest
import torch

from supernet.fewshot import choose_split, min_cut, similarity_matrix, split_of, value_gradients
from supernet.fewshot.gradient_matching import split_dimension
from supernet.models import build
from supernet.models.calibration import bn_state


@pytest.fixture(scope="module")
def setup(tiny_space):
    torch.manual_seed(0)
    model = build(tiny_space, num_classes=10, in_chans=1)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 1, 24, 24, generator=gen), torch.randint(0, 10, (8,), generator=gen)) for _ in range(2)]
    return model, batches


def test_min_cut_of_a_hand_made_graph():
    # values 0 and 1 agree, 2 and 3 agree, the two pairs disagree: the cut separates the pairs
    sim = np.array(
        [
            [1.0, 0.9, 0.1, -0.2],
            [0.9, 1.0, 0.0, 0.1],
            [0.1, 0.0, 1.0, 0.8],
            [-0.2, 0.1, 0.8, 1.0],
        ]
    )
    groups, cut = min_cut(sim)
    assert groups == [[0, 1], [2, 3]] and cut == pytest.approx(0.1 + 0.0 - 0.2 + 0.1)
    # a node that disagrees with all others is cut off alone
    groups, _ = min_cut(np.array([[1.0, 0.9, -0.5], [0.9, 1.0, -0.4], [-0.5, -0.4, 1.0]]))
    assert groups == [[0, 1], [2]]
    # ties go to the first grouping in lexicographic order, whatever the float noise
    assert min_cut(np.ones((3, 3)))[0] == [[0, 1], [2]]
    with pytest.raises(ValueError, match="at least 2 nodes"):
        min_cut(np.ones((1, 1)))


def test_similarity_of_hand_made_gradients():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    sim = similarity_matrix([a, b, -a, torch.zeros(2)])
    assert sim[0, 1] == pytest.approx(0.0) and sim[0, 2] == pytest.approx(-1.0) and sim[0, 3] == 0.0
    assert np.allclose(np.diag(sim), 1.0) and np.allclose(sim, sim.T)


def test_value_gradients_are_deterministic_and_leave_the_supernet_alone(setup, tiny_space):
    model, batches = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    active = model.arch
    first = value_gradients(model, "stage2.kernel", batches, children=2, seed=0)
    assert set(first) == {3, 5} and all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in first.values())
    again = value_gradients(model, "stages[2].kernel", batches, children=2, seed=0)
    assert all(torch.equal(first[v], again[v]) for v in first)
    assert model.arch == active and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert bn_state(model).keys()  # statistics untouched (checked with the state_dict above)
    assert all(p.grad is None for p in model.parameters())


def test_a_split_is_a_function_of_the_measured_gradients(setup, tiny_space):
    model, batches = setup
    dim = split_dimension(tiny_space, "stage2.expand")
    grads = value_gradients(model, dim.key, batches, children=2, seed=0)
    split = split_of(dim, grads)
    assert sorted(v for g in split.groups for v in g) == list(dim.choices) and all(split.groups)
    assert split == split_of(dim, {v: g.clone() for v, g in grads.items()})  # same gradients, same split
    # gradients built so that 2 and 3 agree and 4 points the other way: 4 is cut off
    base = torch.randn(50, generator=torch.Generator().manual_seed(1))
    hand = {2: base, 3: base + 0.01, 4: -base}
    assert split_of(dim, hand).groups == ((2, 3), (4,)) and split_of(dim, hand).cut == pytest.approx(-1.0, abs=1e-3)


def test_choose_split_takes_the_dimension_that_disagrees_most(setup):
    model, batches = setup
    best, splits = choose_split(model, ["stage1.kernel", "stage2.kernel", "resolution"], batches, children=2)
    assert [s.dimension for s in splits] == ["stages[1].kernel", "stages[2].kernel", "resolution"]
    assert best.cut == min(s.cut for s in splits) and best in splits
    with pytest.raises(ValueError, match="stage0.kernel has one choice"):
        choose_split(model, ["stage0.kernel"], batches)
    with pytest.raises(Exception, match="'stage9.kernel' is not a dimension of space 'tiny'"):
        choose_split(model, ["stage9.kernel"], batches)
