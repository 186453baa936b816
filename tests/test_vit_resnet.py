"""The ViT (AutoFormer-style) and ResNet families: gradients and position embedding of children,
analytic complexity, arch strings, and a short training run through the Hydra app (contract 1 for
every family: ``test_families.py``)."""

import random

import pytest
import torch
from helpers import train

from supernet.metrics import complexity
from supernet.models import ResNetSupernet, ViTSupernet, build
from supernet.space import Arch, SearchSpace, SpaceError, load_space
from supernet.space.resnet import resnet_layout
from supernet.space.vit import vit_layout

NEW_SPACES = ["vit_tiny", "resnet_cifar", "autoformer_tiny"]


def test_vit_child_trains_like_supernet():
    """Train-mode gradients through the elastic slices (head-major qkv rows, resampled position
    embedding) equal those of the exported child, and unused slices get none."""
    torch.manual_seed(0)
    space = load_space("vit_tiny")
    model = build(space, 10, 1)
    arch = Arch.parse("r20c48d4/n2m3/n3m2/n4m3/n2m2/n4m3")
    model.set_arch(arch)
    child = model.extract()
    x = torch.randn(3, 1, 20, 20)
    model(x).square().sum().backward()
    child(x).square().sum().backward()
    qkv = model.layers[0].attn.body[1].qkv.weight.grad
    torch.testing.assert_close(child.get_submodule("2.0.body.1.qkv").weight.grad, qkv[: 3 * 2 * 16, :48])
    assert qkv[3 * 2 * 16 :].abs().sum() == 0 and qkv[:, 48:].abs().sum() == 0
    assert model.layers[4].attn.body[1].qkv.weight.grad is None  # beyond the active depth
    assert model.pos_embed.pos_embed.grad[..., 48:].abs().sum() == 0


def test_vit_position_embedding_is_resampled_per_grid():
    space = load_space("vit_tiny")
    model = build(space, 10, 1)
    for res, tokens in [(16, 17), (20, 26), (24, 37)]:
        child = model.extract(space.max().replace(resolution=res))
        assert child.get_submodule("1").pos_embed.shape == (1, tokens, 64)
    assert vit_layout(space, space.min()).num_tokens == 17


def test_resnet_projection_shortcuts_follow_the_space():
    space = load_space("resnet_cifar")
    assert [s["projection"] for s in space.stage_settings] == [True, True, True]
    lay = resnet_layout(space, space.max())
    assert [[b.projection for b in stage] for stage in lay.stages] == [[True, False, False]] * 3
    assert (lay.final_ch, lay.final_size) == (64, 8)
    # A stage that keeps one width at stride 1 has an identity shortcut.
    same = space.to_dict()
    same.update(stem={"width": [16]}, stages=[{"width": [16], "depth": [1, 2], "expand": [1], "stride": 1}])
    assert SearchSpace.from_dict(same).stage_settings[0]["projection"] is False
    # ResNet-20 (3 x 3 basic blocks at widths 16/32/64) is the largest child: ~41M multiply-adds, 0.27M params.
    c = complexity(space, space.max(), in_chans=3, num_classes=10)
    assert 40e6 < c.macs < 42e6 and 0.26e6 < c.params < 0.28e6


def test_regularization_switch_reaches_new_families():
    for name, cls in [("vit_tiny", ViTSupernet), ("resnet_cifar", ResNetSupernet)]:
        model = build(name, 10, 1, dropout=0.3, drop_path=0.2)
        assert isinstance(model, cls) and model.dropout.p == 0.0
        with model.regularization(True):
            rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
            assert model.dropout.p == 0.3 and 0.1 < max(rates) <= 0.2
        assert all(m.drop_prob == 0 for m in model.modules() if type(m).__name__ == "DropPath")


@pytest.mark.parametrize("name", NEW_SPACES)
def test_arch_string_round_trip(name):
    space = load_space(name)
    gen = random.Random(1)
    for arch in [space.max(), space.min(), space.mid(), *(space.sample(gen) for _ in range(10))]:
        text = str(arch)
        assert Arch.parse(text) == arch and space.validate(text) == arch
        assert Arch.from_dict(arch.to_dict()) == arch
    if name == "autoformer_tiny":
        assert str(space.max()).startswith("r224c240d14/n4m4/")
        assert str(space.min()).startswith("r224c192d12/n3m3.5/")


def test_bad_declarations_name_the_problem():
    vit = load_space("vit_tiny").to_dict()
    with pytest.raises(SpaceError, match="not a multiple of patch_size"):
        SearchSpace.from_dict({**vit, "resolutions": [18]})
    with pytest.raises(SpaceError, match="list of 5"):
        SearchSpace.from_dict({**vit, "layers": [{"heads": [2], "mlp_ratio": [2]}] * 3})
    resnet = load_space("resnet_cifar").to_dict()
    with pytest.raises(SpaceError, match="block"):
        SearchSpace.from_dict({**resnet, "block": "dense"})


@pytest.mark.parametrize(
    "overrides", [["experiment=vit_digits"], ["space=resnet_cifar"]], ids=["vit_tiny", "resnet_cifar"]
)
def test_short_training_run(overrides, tmp_path):
    result = train(tmp_path, overrides)
    rows = {r["child"]: r for r in result["rows"]}
    assert {"max", "min", "mid"} <= set(rows)
    assert all(0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0 for r in rows.values())
    assert rows["max"]["mmacs"] > rows["min"]["mmacs"]


def test_parameters_are_credited_to_their_stage():
    """PA&DA credits gradients per stage: layer i of the ViT is stage i, stage i of the ResNet its blocks."""
    vit = build("vit_tiny", 10, 1)
    stages = vit.parameter_stages()
    assert stages[vit.layers[3].attn.body[1].qkv.weight] == 3
    assert stages[vit.pos_embed.pos_embed] is None and stages[vit.classifier.weight] is None
    resnet = build("resnet_cifar", 10, 1)
    stages = resnet.parameter_stages()
    assert stages[resnet.stages[2][1].residual.body.convs[0].conv.weight] == 2
    assert stages[resnet.stem.conv.weight] is None


def test_attention_heads_are_leading_head_major_rows():
    """``h`` active heads compute exactly ``h`` independent heads of width ``head_dim``, and the
    exported plain module agrees."""
    from supernet.ops.elastic_attention import ElasticAttention

    torch.manual_seed(0)
    attn = ElasticAttention(max_embed=32, max_heads=4, head_dim=8)
    attn.configure(embed_dim=24, heads=2)
    x = torch.randn(2, 5, 24)
    w, b = attn.qkv.weight, attn.qkv.bias
    heads = []
    for h in range(2):
        rows = slice(24 * h, 24 * (h + 1))  # head h: its q, k, v rows, 8 each
        q, k, v = (x @ w[rows, :24].T + b[rows]).split(8, dim=-1)
        heads.append(torch.nn.functional.scaled_dot_product_attention(q, k, v))
    expected = torch.cat(heads, -1) @ attn.proj.weight[:24, :16].T + attn.proj.bias[:24]
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attn.export(24)(x), expected, atol=1e-5, rtol=1e-5)


def test_vit_position_embedding_and_class_token_are_not_decayed():
    from supernet.training import param_groups

    model = build(load_space("vit_tiny"), 10, 1)
    decayed = {id(p) for p in param_groups(model, 0.05)[0]["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in decayed}
    assert "pos_embed.pos_embed" not in names and "pos_embed.cls_token" not in names
    assert "patch_embed.proj.weight" in names  # the other matrices still are
