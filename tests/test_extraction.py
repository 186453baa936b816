"""Extraction details of the ``mbconv`` family (contract 1 for every family: ``test_families.py``)."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from supernet.metrics import complexity
from supernet.models import build
from supernet.space import load_space


def test_extracted_child_is_plain_torch(tiny_space):
    model = build(tiny_space, 10, 1)
    child = model.extract(tiny_space.max())
    assert isinstance(child, torch.fx.GraphModule)
    for module in child.modules():
        assert type(module).__module__.startswith("torch."), type(module)
    # The child owns copies: changing it leaves the supernet untouched.
    before = model.stem.conv.weight.detach().clone()
    for p in child.parameters():
        p.data.zero_()
    assert torch.equal(model.stem.conv.weight, before)


def test_extracted_child_trains_like_supernet(tiny_space):
    """Gradients through the elastic slices equal those of the exported child (train mode)."""
    torch.manual_seed(0)
    model = build(tiny_space, 10, 1, zero_init_residual=False)
    arch = tiny_space.resolve("random:5")
    model.set_arch(arch)
    child = model.extract()
    x = torch.randn(4, 1, arch.resolution, arch.resolution)
    model(x).square().sum().backward()
    child(x).square().sum().backward()
    torch.testing.assert_close(
        child.get_submodule("0.0").weight.grad, model.stem.conv.weight.grad[: arch["stem"]], atol=1e-4, rtol=1e-4
    )
    # weights of channels the child did not use receive no gradient
    assert model.stem.conv.weight.grad[arch["stem"] :].abs().sum() == 0


def test_attentivenas_published_complexity():
    space = load_space("attentivenas")
    small = complexity(space, space.min())
    large = complexity(space, space.max())
    assert 200e6 < small.macs < 206e6  # paper: ~203M (A0)
    assert 1.90e9 < large.macs < 1.98e9  # paper: ~1.94G
    model = build(space, 1000, 3).eval()
    model.set_arch(space.min())
    child = model.extract()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        child(torch.randn(1, 3, 192, 192))
    assert counter.get_total_flops() == 2 * small.macs
    assert sum(p.numel() for p in child.parameters()) == small.params


def test_regularization_switch(tiny_space):
    model = build(tiny_space, 10, 1, dropout=0.3, drop_path=0.2)
    assert model.dropout.p == 0.0
    with model.regularization(True):
        assert model.dropout.p == 0.3
        assert max(b.drop_path.drop_prob for s in model.stages for b in s) > 0
    assert model.dropout.p == 0.0
    assert all(b.drop_path.drop_prob == 0 for s in model.stages for b in s)
