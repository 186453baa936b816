"""The epsinas zero-cost score of a supernet's child."""

import math

import pytest
import torch

from supernet.models import build
from supernet.search import epsinas_score
from supernet.search.epsinas import epsinas_from_outputs


def supernet(space, seed: int):
    torch.manual_seed(seed)
    return build(space, num_classes=10, in_chans=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One small batch per score: a second thread only adds contention (and minutes on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def batch():
    return torch.rand(8, 1, 24, 24, generator=torch.Generator().manual_seed(0))


def test_formula_on_hand_made_outputs():
    # normalised: p1 = [0, 1/4, 1/2, 1], p2 = [0, 1/2, 3/4, 1]; the zeros (each run's minimum) are
    # left out: mean |p1 - p2| = (1/4 + 1/4 + 0) / 3, mean of the six values left = 4 / 6
    first, second = torch.tensor([[0.0, 1.0], [2.0, 4.0]]), torch.tensor([[-1.0, 1.0], [2.0, 3.0]])
    assert epsinas_from_outputs(first, second) == pytest.approx((1 / 6) / (4 / 6))
    assert math.isnan(epsinas_from_outputs(torch.ones(4), torch.arange(4.0)))  # a constant output


def test_deterministic_and_finite_for_min_and_max(tiny_space, batch):
    model = supernet(tiny_space, 0)
    for arch in (tiny_space.min(), tiny_space.max()):
        score = epsinas_score(model, arch, batch)
        assert math.isfinite(score) and score > 0
        assert epsinas_score(model, arch, batch) == score
    assert epsinas_score(model, tiny_space.min(), batch) != epsinas_score(model, tiny_space.max(), batch)


def test_leaves_the_supernet_as_it_was(tiny_space, batch):
    model = supernet(tiny_space, 0).train()
    model.set_arch(tiny_space.mid())
    before = {name: value.clone() for name, value in model.state_dict().items()}
    epsinas_score(model, tiny_space.max(), batch)
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], value) for name, value in before.items())
    assert model.arch == tiny_space.mid() and model.training


def test_reads_the_architecture_not_the_trained_weights(tiny_space, batch):
    """Every weight is replaced by the constants: two supernets with other weights score a child alike."""
    arch = tiny_space.resolve("random:3")
    assert epsinas_score(supernet(tiny_space, 0), arch, batch) == epsinas_score(supernet(tiny_space, 1), arch, batch)


def test_refuses_bad_input(tiny_space, batch):
    model = supernet(tiny_space, 0)
    with pytest.raises(ValueError, match="at least 2 inputs"):
        epsinas_score(model, tiny_space.max(), batch[:1])
    with pytest.raises(ValueError, match="two distinct constant weights"):
        epsinas_score(model, tiny_space.max(), batch, weights=(1.0, 1.0))
