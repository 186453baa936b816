import random

import pytest

from supernet.space import Arch, ArchError, SearchSpace, SpaceError, available_spaces, load_space


@pytest.mark.parametrize("name", ["tiny", "mobilenet_cifar", "attentivenas"])
def test_string_form_round_trips(name):
    space = load_space(name)
    gen = random.Random(0)
    for arch in [space.max(), space.min(), *(space.sample(gen) for _ in range(50))]:
        assert Arch.parse(str(arch)) == arch
        assert Arch.from_dict(arch.to_dict()) == arch
        assert hash(Arch.parse(str(arch))) == hash(arch)
        assert space.validate(arch) is arch


def test_arch_is_immutable_and_hashable(tiny_space):
    arch = tiny_space.max()
    with pytest.raises(AttributeError):
        arch.stages = ()
    assert len({arch, tiny_space.max(), tiny_space.min()}) == 2


def test_max_min_and_size(tiny_space):
    mx, mn = tiny_space.max(), tiny_space.min()
    assert mx.resolution == 24 and mn.resolution == 16
    assert [s["depth"] for s in mx.stages] == [2, 3, 3]
    assert [s["width"] for s in mn.stages] == [8, 16, 24]
    expected = 1
    for dim in tiny_space.dimensions:
        expected *= len(dim.choices)
    assert tiny_space.size() == expected == 3 * 2 * 2 * (2 * 2 * 1 * 1) * (2 * 3 * 2 * 3) ** 2


def test_sample_mutate_crossover_stay_in_space_and_are_seeded(tiny_space):
    a = [tiny_space.sample(random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    gen = random.Random(1)
    for _ in range(100):
        x, y = tiny_space.sample(gen), tiny_space.sample(gen)
        tiny_space.validate(tiny_space.mutate(x, 0.5, gen))
        child = tiny_space.crossover(x, y, gen)
        tiny_space.validate(child)
        for dim in tiny_space.dimensions:
            assert tiny_space.value(child, dim) in (tiny_space.value(x, dim), tiny_space.value(y, dim))
    x = tiny_space.max()
    mutated = tiny_space.mutate(x, 1.0, gen)
    assert all(
        tiny_space.value(mutated, d) != tiny_space.value(x, d) for d in tiny_space.dimensions if len(d.choices) > 1
    )


def test_resolve_named_children(tiny_space):
    assert tiny_space.resolve("max") == tiny_space.max()
    assert tiny_space.resolve("min") == tiny_space.min()
    assert tiny_space.resolve("random:3") == tiny_space.resolve("random:3")
    assert tiny_space.resolve(str(tiny_space.min())) == tiny_space.min()


def test_value_not_in_choices_names_stage_field_value_and_choices(tiny_space):
    bad = str(tiny_space.max()).replace("w24d3k5e4", "w20d3k5e4")
    with pytest.raises(ArchError, match=r"stages\[1\]\.width = 20 is not allowed \(choices: \[16, 24\]\)"):
        tiny_space.validate(bad)


def test_depth_over_range(tiny_space):
    bad = tiny_space.with_values(tiny_space.max(), {d: 9 for d in tiny_space.dimensions if d.key == "stages[2].depth"})
    with pytest.raises(ArchError, match=r"stages\[2\]\.depth = 9 .*choices: \[1, 2, 3\]"):
        tiny_space.validate(bad)


def test_arch_of_another_space(tiny_space):
    other = load_space("attentivenas").max()
    with pytest.raises(ArchError, match="it has 7 stages, the space has 3"):
        tiny_space.validate(str(other))


@pytest.mark.parametrize(
    "text", ["", "r24s16", "hello world", "r24s16h96/w16d2k3e1/w24d3k5e4/w32d3k5e4x", "r24s16h96//"]
)
def test_malformed_strings(tiny_space, text):
    with pytest.raises(ArchError):
        tiny_space.validate(text)


def test_malformed_string_message():
    with pytest.raises(ArchError, match="malformed arch string.*stage 0"):
        Arch.parse("r24s16/w16?d2")


def test_errors_are_value_errors():
    assert issubclass(ArchError, ValueError) and issubclass(SpaceError, ValueError)


def test_load_space_by_path_and_unknown_name(tmp_path):
    assert set(available_spaces()) >= {"tiny", "mobilenet_cifar", "attentivenas"}
    decl = load_space("tiny").to_dict()
    decl["name"] = "mine"
    import yaml

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(decl))
    assert load_space(path).name == "mine"
    assert load_space(str(path)) == SearchSpace.from_dict(decl)
    with pytest.raises(SpaceError, match="unknown search space 'nope'"):
        load_space("nope")


def test_a_bare_name_is_a_shipped_space_whatever_the_working_directory_holds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "attentivenas").mkdir()  # e.g. a folder of runs named after the space
    (tmp_path / "tiny").write_text("not a space")
    assert load_space("attentivenas").name == "attentivenas" and load_space("tiny").name == "tiny"
    with pytest.raises(SpaceError, match="search space file not found: attentivenas"):
        load_space("./attentivenas")  # a path is a path
    with pytest.raises(SpaceError, match="unknown search space 'attentivenas2'"):
        load_space("attentivenas2")


def test_a_space_file_with_a_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nstages: [unclosed\n")
    with pytest.raises(SpaceError) as err:
        load_space(path)
    message = str(err.value)
    assert "\n" not in message and f"{path}, line 3, column 1: expected ',' or ']'" in message, message


def test_an_unknown_activation_names_its_key_value_and_the_known_ones(tiny_space):
    for mutation, key in (
        (lambda d: d.update(activation="hswish"), "space 'tiny' activation='hswish'"),
        (lambda d: d["stages"][1].update(activation="hswish"), "space 'tiny' stages[1].activation='hswish'"),
        (lambda d: d.update(se={"gate": "hsigmoid"}), "space 'tiny' se.gate='hsigmoid'"),
    ):
        decl = tiny_space.to_dict()
        mutation(decl)
        with pytest.raises(SpaceError) as err:
            SearchSpace.from_dict(decl)
        message = str(err.value)
        assert message.startswith(key) and "is not a known activation; known: [" in message, message
        assert "'hard_swish'" in message and "\n" not in message


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda d: d["stages"][0].update(kernel=[4]), "kernel sizes must be odd"),
        (lambda d: d["stages"][0].update(stride=3), "must be 1 or 2"),
        (lambda d: d["stages"][0].update(widht=[3]), "unknown key"),
        (lambda d: d.update(family="nope"), "unknown space family"),
        (lambda d: d["stages"][1].update(depth=[]), "list of choices is empty"),
        (lambda d: d.pop("head"), "missing section 'head'"),
    ],
)
def test_malformed_space_declarations(mutation, message):
    decl = load_space("tiny").to_dict()
    mutation(decl)
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_dict(decl)


def test_resolve_reads_arch_files(tiny_space, tmp_path):
    import yaml

    arch = tiny_space.resolve("random:2")
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(arch.to_dict()))
    document = tmp_path / "arch.yml"
    document.write_text(yaml.safe_dump({"space": tiny_space.to_dict(), "arch": str(arch)}))
    assert tiny_space.resolve(str(plain)) == tiny_space.resolve(document) == arch
    other = load_space("mobilenet_cifar")
    with pytest.raises(ArchError, match="was made for space 'tiny', which differs from space 'mobilenet_cifar'"):
        other.resolve(str(document))
    with pytest.raises(ArchError, match=r"arch file .*plain\.yaml: arch .* does not belong to space 'mobilenet_cifar'"):
        other.resolve(str(plain))
    with pytest.raises(FileNotFoundError, match="arch file not found"):
        tiny_space.resolve(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("stages: [")
    with pytest.raises(ArchError, match="is not valid YAML"):
        tiny_space.resolve(str(tmp_path / "bad.yaml"))
