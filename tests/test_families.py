"""Contract 1 for every family: an extracted child computes exactly what the supernet computes with
that arch, its multiply-adds equal what ``FlopCounterMode`` counts and its parameters the analytic
count. Run over every shipped space and over the toy family of ``docs/adding_a_family.md``, which is
defined here, whole, as the guide describes it. Also: the one elastic protocol, the one
registration, and the model options of every shipped recipe."""

from __future__ import annotations

import copy
import inspect
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import compose_config, randomise_norms
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from supernet.cli.common import CONFIG_PATH, plain
from supernet.metrics import complexity
from supernet.models import Supernet, build
from supernet.ops import ElasticBlock, ElasticConvBnAct, ElasticLinear, ElasticSequential
from supernet.space import (
    Arch,
    ParsedSpace,
    SearchSpace,
    SpaceError,
    available_spaces,
    get_family,
    load_space,
    register_family,
)
from supernet.space.geometry import conv_bn_cost, conv_out_size, total_cost
from supernet.space.space import as_choices, as_choices_map, check_keys

# -- the toy family of docs/adding_a_family.md: a plain stack of elastic conv-BN-ReLU blocks ------


def parse_toy(decl) -> ParsedSpace:
    where = f"space {decl['name']!r}"
    check_keys(decl, ("name", "family", "description", "resolutions", "stages"), where)
    stage_choices, stage_settings = [], []
    for i, stage in enumerate(decl["stages"]):
        check_keys(stage, ("width", "depth", "stride"), f"{where} stages[{i}]")
        stage_choices.append(as_choices_map(stage, ("width", "depth"), f"{where} stages[{i}]"))
        stage_settings.append({"stride": stage.get("stride", 1)})
    return ParsedSpace(
        {"resolution": as_choices(decl["resolutions"], f"{where}.resolutions")}, stage_choices, stage_settings
    )


@dataclass(frozen=True)
class ToyBlockLayout:
    in_ch: int
    out_ch: int
    stride: int
    out_size: int


def toy_layout(space: SearchSpace, arch: Arch, in_chans: int) -> list[list[ToyBlockLayout]]:
    """Every active block of ``arch``: read by the model and by the counter."""
    in_ch, size, stages = in_chans, arch.resolution, []
    for choice, setting in zip(arch.stages, space.stage_settings):
        blocks = []
        for j in range(choice["depth"]):
            stride = setting["stride"] if j == 0 else 1
            size = conv_out_size(size, 3, stride)
            blocks.append(ToyBlockLayout(in_ch, choice["width"], stride, size))
            in_ch = choice["width"]
        stages.append(blocks)
    return stages


def count_toy(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> tuple[int, int]:
    stages = toy_layout(space, arch, in_chans)
    parts = [conv_bn_cost(b.out_size**2, b.in_ch, b.out_ch, 9) for blocks in stages for b in blocks]
    width = stages[-1][-1].out_ch
    parts.append((width * num_classes, width * num_classes + num_classes))  # the classifier
    return total_cost(parts)


class ToyBlock(nn.Module):
    def __init__(self, largest: ToyBlockLayout):
        super().__init__()
        self.layer = ElasticConvBnAct(largest.in_ch, largest.out_ch, 3, largest.stride)

    def configure(self, *, out_channels: int) -> None:
        self.layer.configure(out_channels=out_channels)
        self.out_features = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def export(self, in_features: int) -> nn.Module:
        return self.layer.export(in_features)


class ToySupernet(Supernet):
    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int = 3, *, dropout: float = 0.0):
        super().__init__(space, num_classes, in_chans)
        largest = toy_layout(space, space.max(), in_chans)
        self.stages = nn.ModuleList(ElasticSequential(ToyBlock(b) for b in blocks) for blocks in largest)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(largest[-1][-1].out_ch, num_classes)
        self.set_regularization(False)
        self.set_arch(space.max())

    def _configure(self, arch: Arch) -> None:
        self.layout = toy_layout(self.space, arch, self.in_chans)
        for stage, blocks in zip(self.stages, self.layout):
            stage.configure(depth=len(blocks))
            for block, b in zip(stage, blocks):
                block.configure(out_channels=b.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.classifier(self.dropout(self.pool(x)))

    def _assemble(self) -> nn.Module:
        stages = [stage.export(blocks[0].in_ch) for stage, blocks in zip(self.stages, self.layout)]
        width = self.layout[-1][-1].out_ch
        return nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), self.classifier.export(width))


# A family module names its model by import path; a test module has none, so it passes the class.
register_family("toy", parser=parse_toy, counter=count_toy, model=ToySupernet)

TOY_SPACE = {
    "name": "toy",
    "family": "toy",
    "resolutions": [12, 16],
    "stages": [
        {"width": [4, 8], "depth": [1, 2], "stride": 1},
        {"width": [8, 12], "depth": [1, 2, 3], "stride": 2},
    ],
}

# -- the spaces every check runs on --------------------------------------------------------------


def shipped(name: str, resolutions: list[int] | None = None) -> SearchSpace:
    """A shipped space; ``resolutions`` replaces its own to keep the large spaces fast (every
    width, depth, kernel and expand choice stays)."""
    space = load_space(name)
    return space if resolutions is None else SearchSpace.from_dict({**space.to_dict(), "resolutions": resolutions})


# name: (space, in_chans, num_classes, random archs besides max and min)
CASES = {
    "tiny": (lambda: shipped("tiny"), 1, 10, 20),
    "mobilenet_cifar": (lambda: shipped("mobilenet_cifar"), 3, 100, 20),
    "attentivenas": (lambda: shipped("attentivenas", [32, 48]), 3, 10, 2),
    "resnet_cifar": (lambda: shipped("resnet_cifar"), 1, 10, 20),
    "vit_tiny": (lambda: shipped("vit_tiny"), 1, 10, 20),
    "autoformer_tiny": (lambda: shipped("autoformer_tiny", [32, 48]), 3, 10, 2),
    "toy": (lambda: SearchSpace.from_dict(TOY_SPACE), 2, 5, 20),
}


def test_every_shipped_space_is_checked():
    assert set(available_spaces()) <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_extracted_children_are_exact_and_counted(name):
    make_space, in_chans, num_classes, num_random = CASES[name]
    space = make_space()
    torch.manual_seed(0)
    model = build(space, num_classes, in_chans).eval()
    randomise_norms(model)
    gen = random.Random(0)
    for arch in [space.max(), space.min(), *(space.sample(gen) for _ in range(num_random))]:
        model.set_arch(arch)
        x = torch.randn(2, in_chans, arch.resolution, arch.resolution)
        with torch.no_grad():
            expected = model(x)
            child = model.extract()
            got = child(x)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5, msg=f"outputs differ for {arch}")
        counted = complexity(space, arch, in_chans=in_chans, num_classes=num_classes)
        assert sum(p.numel() for p in child.parameters()) == counted.params, str(arch)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            child(x[:1])
        assert counter.get_total_flops() == 2 * counted.macs, str(arch)
        assert all(type(m).__module__.startswith("torch.") for m in child.modules())


@pytest.mark.parametrize("name", ["tiny", "resnet_cifar", "vit_tiny"])
def test_a_float64_supernet_extracts_float64_children_exactly(name):
    """Every exported layer takes the supernet's dtype (a float32 BN in a float64 child failed
    with "mixed dtype"), and in float64 the child computes what the supernet does."""
    make_space, in_chans, num_classes, _ = CASES[name]
    space = make_space()
    torch.manual_seed(0)
    model = build(space, num_classes, in_chans).double().eval()
    randomise_norms(model)
    for arch in (space.max(), space.min()):
        model.set_arch(arch)
        x = torch.randn(2, in_chans, arch.resolution, arch.resolution, dtype=torch.float64)
        with torch.no_grad():
            expected = model(x)
            child = model.extract()
            got = child(x)
        assert {t.dtype for t in child.state_dict().values() if t.is_floating_point()} == {torch.float64}
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12, msg=f"outputs differ for {arch}")


def _settings(model: nn.Module) -> dict[str, dict]:
    """Every module's plain attributes (the active settings among them)."""
    return {
        name: {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
        for name, m in model.named_modules()
    }


@pytest.mark.parametrize("name", CASES)
def test_every_elastic_module_follows_the_protocol(name):
    make_space, in_chans, num_classes, _ = CASES[name]
    space = make_space()
    model = build(space, num_classes, in_chans)
    for module_name, module in model.named_modules():
        if module is not model and hasattr(module, "export"):
            assert list(inspect.signature(module.export).parameters) == ["in_features"], module_name
        if isinstance(module, ElasticSequential):
            assert all(isinstance(block, ElasticBlock) for block in module), module_name
    arch = space.min()
    model.set_arch(arch)
    before = _settings(model)
    model.train()(torch.randn(2, in_chans, arch.resolution, arch.resolution))
    assert _settings(model) == before  # forward changes no setting


def test_unknown_family_is_named_everywhere(tiny_space):
    known = r"unknown space family 'nope'; known families: \[.*'mbconv'.*'resnet'.*'vit'.*\]"
    with pytest.raises(SpaceError, match=known):
        get_family("nope")
    with pytest.raises(SpaceError, match=known):
        SearchSpace.from_dict({**tiny_space.to_dict(), "family": "nope"})
    orphan = copy.copy(tiny_space)
    orphan.family = "nope"
    with pytest.raises(SpaceError, match=known):
        complexity(orphan, orphan.max())
    with pytest.raises(SpaceError, match=known):
        build(orphan, 10, 1)


def test_a_family_registers_once():
    with pytest.raises(SpaceError, match="'toy' is already registered"):
        register_family("toy", parser=parse_toy, counter=count_toy, model=ToySupernet)
    with pytest.raises(SpaceError, match="'package.module:Class'"):
        register_family("toy2", parser=parse_toy, counter=count_toy, model="supernet.models.ToySupernet")


def test_models_refuse_options_they_do_not_use():
    with pytest.raises(TypeError, match=r"'vit' supernet \(ViTSupernet\) takes no option \['bn_momentum'\]"):
        build("vit_tiny", 10, 1, bn_momentum=0.1)
    with pytest.raises(TypeError, match=r"no option \['widht'\]; its options: \['dropout', 'drop_path', 'bn_eps'"):
        build("tiny", 10, 1, widht=2)


def _recipe_builds(overrides: list[str], tmp_path: Path) -> None:
    cfg = compose_config("train", overrides, tmp_path)
    build(SearchSpace.from_dict(plain(cfg.space)), 10, 3, **plain(cfg.model.kwargs))


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (Path(CONFIG_PATH) / "experiment").glob("*.yaml")))
def test_every_experiment_builds_its_model(experiment, tmp_path):
    _recipe_builds([f"experiment={experiment}"], tmp_path)


@pytest.mark.parametrize("name", available_spaces())
def test_every_space_builds_with_its_familys_recipe(name, tmp_path):
    recipe = "vit" if load_space(name).family == "vit" else "bignas"
    _recipe_builds([f"space={name}", f"model={recipe}"], tmp_path)
