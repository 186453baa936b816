"""Children out of checkpoints: safe loading, artifacts, tables, constrained search (issue 6).

One quick digits run (module fixture) gives the checkpoint every test reuses; one extraction gives
the artifact. The CLI exit-code checks run as subprocesses, started together (each spends most of
its time importing torch, Lightning and Hydra) and awaited by the tests that read them.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from helpers import compose_config, one_thread, train  # noqa: F401 (one_thread: a fixture)

from supernet.child import ChildEvaluator, evaluator_for, load, load_checkpoint, read_checkpoint
from supernet.child.table import read_rows
from supernet.files import atomic_folder
from supernet.metrics import ChildReport, LatencySettings, LatencyTable, complexity, measure_latency
from supernet.models import build
from supernet.search import Candidate, Constraints, EvolutionSettings, Search, best, pareto_front
from supernet.space import Arch, ArchError, load_space

REPO = Path(__file__).resolve().parent.parent
ARCH = "r20s16h64/w16d2k3e1/w24d2k5e3/w32d1k3e4"  # a mid-size child of the tiny space
QUICK = ["calib_batches=2", "latency.warmup=1", "latency.repeats=3", "device=cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train(
        out,
        [
            "trainer.limit_train_batches=2",
            "test_after_fit=false",
            "validation.children=[max]",
            "callbacks.checkpoint=null",
        ],
    )
    return out / "checkpoints" / "last.ckpt"


def _bomb(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when it is unpickled."""

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps(Bomb())


@pytest.fixture(scope="module")
def cli(ckpt, tmp_path_factory):
    """Start every failing command at once; ``cli(name)`` waits for one: (returncode, stderr, folder)."""
    tmp = tmp_path_factory.mktemp("cli")
    truncated = tmp / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:100])
    other = tmp / "other_space.ckpt"  # a well-formed checkpoint of another space
    space = load_space("mobilenet_cifar")
    model = build(space, 10, 1)
    torch.save(
        {
            "state_dict": {f"supernet.{k}": v for k, v in model.state_dict().items()},
            "supernet": {"space": space.to_dict(), "num_classes": 10, "in_chans": 1, "model_kwargs": {}},
        },
        other,
    )
    foreign = tmp / "foreign.csv"  # a table measured on another checkpoint
    foreign.write_text(f"arch,val_acc,checkpoint_sha256,settings\n{ARCH},0.99,{'0' * 64},{{}}\n")
    cases = {
        "foreign_table": ("evaluate", [f"ckpt_path={ckpt}", "children=[min]", f"output={foreign}"]),
        "missing": ("extract", [f"ckpt_path={tmp / 'nope.ckpt'}"]),
        "truncated": ("extract", [f"ckpt_path={truncated}"]),
        "outside": ("extract", [f"ckpt_path={ckpt}", "arch=r20s16h64/w12d2k3e1/w24d2k5e3/w32d1k3e4"]),
        "other_space": ("extract", [f"ckpt_path={other}", f"arch={ARCH}"]),
        "infeasible": ("search", [f"ckpt_path={ckpt}", "constraints.macs_max=1000", "extract_best=true"]),
    }
    procs = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # five processes on two cores: no thread oversubscription
    for name, (command, args) in cases.items():
        folder = tmp / name
        procs[name] = (
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    f"supernet.cli.{command}",
                    *args,
                    *QUICK,
                    f"hydra.run.dir={folder}",
                    *([f"out={folder / 'child'}"] if command == "extract" else []),
                ],
                cwd=tmp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            folder,
        )

    def result(name):
        proc, folder = procs[name]
        _, err = proc.communicate(timeout=300)
        return proc.returncode, err, folder

    result.foreign = foreign

    yield result
    for proc, _ in procs.values():
        proc.kill()


@pytest.fixture(scope="module")
def artifact(ckpt, tmp_path_factory):
    from supernet.cli.extract import run

    out = tmp_path_factory.mktemp("extract")
    cfg = compose_config("extract", [f"ckpt_path={ckpt}", f"arch={ARCH}", f"out={out / 'child'}", *QUICK], out)
    return out / "child", run(cfg), cfg


def _reference(ckpt, cfg, arch: str, x: torch.Tensor) -> torch.Tensor:
    """The supernet's output for ``arch`` after the same recalibration the extraction did."""
    from hydra.utils import instantiate

    loaded = load_checkpoint(ckpt)
    ev = evaluator_for(loaded.model, instantiate(cfg.data), calib_batches=cfg.calib_batches, device=torch.device("cpu"))
    ev.calibrate(loaded.space.resolve(arch))
    with torch.no_grad():
        return loaded.model(x)


def _assert_failed(result, *needles):
    code, err, folder = result
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    # no artifact, no temporary folder, no table (the run folder itself may be removed: nothing ran)
    leftovers = [p.name for p in folder.glob("*") if p.name not in (".hydra",) and not p.name.endswith(".log")]
    assert leftovers == [], leftovers


def test_round_trip_load_and_torch_export(ckpt, cli, artifact, tmp_path):
    # (``cli`` first: the failing commands start now and run alongside this extraction)
    folder, returned, cfg = artifact
    files = {p.name for p in folder.iterdir()}
    assert {"arch.yaml", "model.safetensors", "model.pt2", "metrics.json", "model.onnx"} <= files
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    space = load_space("tiny")
    counted = complexity(space, space.resolve(ARCH), in_chans=1, num_classes=10)
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved == returned
    assert saved["macs"] == counted.macs and saved["params"] == counted.params
    assert 0 <= saved["val_acc"] <= 1 and 0 <= saved["test_acc"] <= 1 and saved["latency"]["ms"] > 0
    assert saved["max_abs_diff_vs_supernet"] <= 1e-5 and saved["onnx"] == "model.onnx"
    from supernet.files import umask

    # every file with the user's mode (safetensors writes its file 0600)
    assert {(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {0o666 & ~umask()}
    import onnx

    assert "model.onnx.data" not in files  # a small child ships one self-contained ONNX file
    onnx_model = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(onnx_model)
    weights = list(onnx_model.graph.initializer)  # (BN folded into the convs by the exporter)
    assert weights and all(t.data_location != onnx.TensorProto.EXTERNAL for t in weights)

    x = torch.randn(5, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    expected = _reference(ckpt, cfg, ARCH, x)
    child = load(folder)
    assert sum(p.numel() for p in child.parameters()) == counted.params
    assert all(type(m).__module__.startswith("torch.") for m in child.modules())
    with torch.no_grad():
        torch.testing.assert_close(child(x), expected, atol=1e-5, rtol=1e-5)

    from safetensors.torch import save_file

    save_file({"x": x, "expected": expected}, str(tmp_path / "io.safetensors"))
    script = textwrap.dedent(f"""
        import sys, torch
        from safetensors.torch import load_file
        io = load_file({str(tmp_path / "io.safetensors")!r})
        program = torch.export.load({str(folder / "model.pt2")!r})
        with torch.no_grad():
            torch.testing.assert_close(program.module()(io["x"]), io["expected"], atol=1e-5, rtol=1e-5)
        assert not any(m == "supernet" or m.startswith("supernet.") for m in sys.modules), "supernet was imported"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

    # the artifact's arch.yaml names the child for the other commands (arch=<file>)
    assert space.resolve(str(folder / "arch.yaml")) == space.resolve(ARCH)


def test_the_input_contract_and_preprocess_reproduce_the_supernet_from_raw_images(ckpt, artifact):
    """The artifact says how to feed it: raw 8x8 digit arrays through ``preprocess`` give exactly
    the tensors of the data module, hence the supernet's predictions and test accuracy."""
    from hydra.utils import instantiate
    from sklearn.datasets import load_digits

    from supernet.child import preprocess
    from supernet.ops import resize_to

    folder, metrics, cfg = artifact
    contract = yaml.safe_load((folder / "arch.yaml").read_text())["input"]
    assert contract == metrics["input"]
    assert (contract["size"], contract["channels"], contract["dtype"], contract["layout"]) == (20, 1, "float32", "NCHW")
    assert [step["op"] for step in contract["steps"]] == ["divide", "normalize", "resize"]
    raw = load_digits()  # 1,797 arrays of 8x8 values in 0..16
    x = preprocess(raw.images, folder)
    assert x.shape == (1797, 1, 20, 20) and x.dtype == torch.float32
    assert torch.equal(preprocess(list(raw.images[:3]), folder), x[:3])  # a list, one at a time
    assert torch.equal(preprocess(raw.images[5], folder), x[5:6])

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    test_x, test_y = datamodule.test_set.dataset.tensors
    test_x = resize_to(test_x, 20)  # the data path of training and evaluation
    where = {image.numpy().tobytes(): i for i, image in enumerate(x)}
    rows = [where[image.numpy().tobytes()] for image in test_x]  # a KeyError if any bit differs
    assert torch.equal(torch.as_tensor(raw.target)[rows], test_y)
    with torch.no_grad():
        from_raw = load(folder)(x[rows]).argmax(1)
    assert torch.equal(from_raw, _reference(ckpt, cfg, ARCH, test_x).argmax(1))
    assert int((from_raw == test_y).sum()) / len(test_y) == metrics["test_acc"]

    program = torch.export.load(str(folder / "model.pt2")).module()  # any batch, the contract's size only
    with torch.no_grad():
        assert torch.equal(program(x[rows[:7]]).argmax(1), from_raw[:7])
    with pytest.raises(AssertionError, match=r"input.size\(\)\[2\] == 20"):
        program(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="the child takes 1 channel"):
        preprocess(torch.zeros(2, 8, 8, 3), folder)


def test_pickle_disguised_as_safetensors_is_refused(artifact, tmp_path):
    live = tmp_path / "live_marker"
    pickle.loads(_bomb(live))  # the bomb is real: unpickling it creates its marker
    assert live.exists()
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "arch.yaml").write_text((artifact[0] / "arch.yaml").read_text())
    marker = tmp_path / "marker"
    (folder / "model.safetensors").write_bytes(_bomb(marker))
    with pytest.raises(ValueError, match=r"model\.safetensors is not a valid safetensors file"):
        load(folder)
    assert not marker.exists()


def test_checkpoints_are_never_unpickled(ckpt, tmp_path):
    marker = tmp_path / "marker"
    bomb = tmp_path / "bomb.ckpt"
    bomb.write_bytes(_bomb(marker))
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        read_checkpoint(bomb)
    assert not marker.exists()
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(ValueError, match="was not written by supernet-train"):
        load_checkpoint(plain)
    loaded = load_checkpoint(ckpt)
    assert loaded.space.name == "tiny" and loaded.meta["num_classes"] == 10


def test_cli_missing_checkpoint(cli):
    _assert_failed(cli("missing"), "checkpoint not found", "nope.ckpt")


def test_cli_evaluate_refuses_a_table_of_another_checkpoint(cli):
    before = cli.foreign.read_text()
    _assert_failed(cli("foreign_table"), "foreign.csv holds numbers of another checkpoint", "fresh=true")
    assert cli.foreign.read_text() == before


def test_cli_truncated_checkpoint(cli):
    _assert_failed(cli("truncated"), "truncated.ckpt", "is not a readable checkpoint")


def test_cli_arch_outside_space(cli):
    _assert_failed(cli("outside"), "stages[0].width = 12 is not allowed")


def test_cli_checkpoint_of_another_space(cli, artifact):
    _assert_failed(cli("other_space"), "does not belong to space 'mobilenet_cifar'")
    with pytest.raises(ArchError, match="was made for space 'tiny'"):
        load_space("mobilenet_cifar").resolve(str(artifact[0] / "arch.yaml"))


def test_cli_unreachable_constraint_names_smallest_value(cli):
    space = load_space("tiny")
    smallest = complexity(space, space.min(), in_chans=1, num_classes=10).macs
    _assert_failed(cli("infeasible"), "macs_max=1000", f"needs {smallest} multiply-adds")


def test_extract_refuses_existing_folder_and_crashes_leave_nothing(ckpt, artifact, tmp_path):
    from supernet.cli.extract import run

    folder, _, _ = artifact
    cfg = compose_config("extract", [f"ckpt_path={ckpt}", f"out={folder}", *QUICK], tmp_path)
    with pytest.raises(ValueError, match="already exists"):
        run(cfg)
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "half") as tmp:
        (tmp / "arch.yaml").write_text("partial")
        raise RuntimeError("crash while writing")
    assert [p.name for p in tmp_path.iterdir() if "half" in p.name] == []


def test_evaluate_table_grid_and_resume(ckpt, tmp_path, capsys):
    from supernet.cli.evaluate import run

    table = tmp_path / "table.csv"
    base = [f"ckpt_path={ckpt}", f"output={table}", *QUICK]
    rows = run(compose_config("evaluate", [*base, "children=[min]", "grid=resolution"], tmp_path))
    space = load_space("tiny")
    assert [r["arch"] for r in rows] == [str(space.min())] + [
        str(space.max().replace(resolution=r)) for r in (16, 20, 24)
    ]
    assert all(float(r["latency_ms"]) > 0 and 0 <= float(r["val_acc"]) <= 1 for r in rows)
    assert rows[0]["latency_device"] == "cpu" and int(rows[0]["latency_repeats"]) == 3
    again = run(compose_config("evaluate", [*base, "children=[min,mid]"], tmp_path))
    assert [r["arch"] for r in again] == [r["arch"] for r in rows] + [str(space.mid())]
    assert [dict(r) for r in again[:4]] == [{k: str(v) for k, v in r.items()} for r in rows]
    printed = capsys.readouterr().out  # not a terminal: the whole table, not 80 columns of it
    assert "test acc" in printed and all(f"│ {r['arch']} " in printed for r in again), printed
    with pytest.raises(ArchError, match="stage<i>.<field>"):
        run(compose_config("evaluate", [*base, "grid=width"], tmp_path))


def _other_checkpoint(ckpt: Path, path: Path) -> Path:
    """``ckpt`` with one weight changed: another supernet of the same space."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    name = next(k for k in state["state_dict"] if k.startswith("supernet.") and k.endswith("weight"))
    state["state_dict"][name] = state["state_dict"][name] + 0.01
    torch.save(state, path)
    return path


def test_evaluate_tables_are_tied_to_their_checkpoint_and_settings(ckpt, tmp_path):
    """A rerun into a table resumes only on the same supernet weights with the same settings; any
    other is refused naming what differs, before any child is measured; fresh=true starts afresh."""
    from supernet.cli.evaluate import run

    table = tmp_path / "table.csv"
    base = [f"output={table}", "children=[min]", *QUICK]
    first = run(compose_config("evaluate", [f"ckpt_path={ckpt}", *base], tmp_path))
    written = table.read_text()
    sha = load_checkpoint(ckpt).fingerprint
    assert first[0]["checkpoint_sha256"] == sha and json.loads(first[0]["settings"])["calib_batches"] == 2
    copy = tmp_path / "copy.ckpt"  # the same weights elsewhere: the same supernet
    copy.write_bytes(ckpt.read_bytes())
    resumed = run(compose_config("evaluate", [f"ckpt_path={copy}", *base], tmp_path))
    assert resumed == [{k: str(v) for k, v in r.items()} for r in first] and table.read_text() == written

    other = _other_checkpoint(ckpt, tmp_path / "other.ckpt")
    for overrides, message in (
        ([f"ckpt_path={other}"], rf"holds numbers of another checkpoint \(SHA-256 {sha[:12]}\.\.\. there"),
        ([f"ckpt_path={ckpt}", "calib_batches=1"], r"other settings \(calib_batches=2 there, 1 now\)"),
        ([f"ckpt_path={ckpt}", "data.split_seed=1"], r"data\.split_seed=0 there, 1 now"),
        ([f"ckpt_path={ckpt}", "latency.repeats=4"], r"latency\.repeats=3 there, 4 now"),
    ):
        with pytest.raises(ValueError, match=message + ".*give another output=, or fresh=true"):
            run(compose_config("evaluate", [*base, *overrides, "children=[min,max]"], tmp_path))
        assert table.read_text() == written  # untouched
    fresh = run(compose_config("evaluate", [f"ckpt_path={other}", *base, "fresh=true"], tmp_path))
    assert [r["checkpoint_sha256"] for r in read_rows(table)] == [load_checkpoint(other).fingerprint]
    assert fresh[0]["val_acc"] != first[0]["val_acc"] or fresh[0]["val_loss"] != first[0]["val_loss"]

    old = tmp_path / "old.csv"  # a table of children that does not say what it was measured on
    old.write_text(f"arch,val_acc\n{ARCH},0.99\n")
    with pytest.raises(ValueError, match="old.csv does not say which checkpoint and settings"):
        run(compose_config("evaluate", [f"ckpt_path={ckpt}", f"output={old}", "children=[min]", *QUICK], tmp_path))


def test_search_resumes_its_history_and_refuses_another_checkpoint(ckpt, tmp_path, monkeypatch):
    """An interrupted search rerun into its folder scores only what it had not scored, and ends
    with the history and best child of an uninterrupted search; a folder holding a search of
    another checkpoint or with other settings is refused."""
    from supernet.cli.search import run

    settings = ["constraints.macs_max=2000000", "population=3", "iterations=1", "parents=2", *QUICK]
    whole = tmp_path / "whole"
    run(compose_config("search", [f"ckpt_path={ckpt}", *settings], whole))
    history = read_rows(whole / "history.csv")
    assert len(history) == 6 and {r["checkpoint_sha256"] for r in history} == {load_checkpoint(ckpt).fingerprint}

    cut = tmp_path / "cut"  # killed after 4 of 6 scorings: history.csv holds 4 rows
    cut.mkdir()
    (cut / "history.csv").write_text("".join((whole / "history.csv").read_text().splitlines(True)[:5]))
    scored = []
    score = ChildEvaluator.score
    monkeypatch.setattr(
        ChildEvaluator, "score", lambda self, arch, split: scored.append((arch, split)) or score(self, arch, split)
    )
    run(compose_config("search", [f"ckpt_path={ckpt}", *settings], cut))
    # the search split scores the archs not scored before; validation and test only report the picks
    assert [str(a) for a, split in scored if split == "search"] == [r["arch"] for r in history[4:]]
    for name in ("history.csv", "pareto.csv", "best_macs_max_2000000.yaml"):
        assert (cut / name).read_text() == (whole / name).read_text(), name

    other = _other_checkpoint(ckpt, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="history.csv holds numbers of another checkpoint.*fresh=true"):
        run(compose_config("search", [f"ckpt_path={other}", *settings], whole))
    with pytest.raises(ValueError, match=r"other settings \(data\.seed=0 there, 1 now, search\.seed=0 there, 1 now\)"):
        run(compose_config("search", [f"ckpt_path={ckpt}", *settings, "seed=1"], whole))
    (whole / "best_old_limit.yaml").write_text("a best file of the search replaced")
    run(compose_config("search", [f"ckpt_path={other}", *settings, "fresh=true"], whole))
    assert {r["checkpoint_sha256"] for r in read_rows(whole / "history.csv")} == {load_checkpoint(other).fingerprint}
    assert not (whole / "best_old_limit.yaml").exists()


def test_search_writes_front_history_and_best(ckpt, tmp_path):
    from supernet.cli.search import run

    limit = 2_000_000
    cfg = compose_config(
        "search",
        [f"ckpt_path={ckpt}", f"constraints.macs_max={limit}", "population=3", "iterations=1", "parents=2", *QUICK],
        tmp_path,
    )
    result = run(cfg)["result"]
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 6  # population * (iterations + 1) scored archs
    space = load_space("tiny")
    best_file = tmp_path / f"best_macs_max_{limit}.yaml"
    doc = yaml.safe_load(best_file.read_text())
    arch = space.resolve(str(best_file))
    assert complexity(space, arch, in_chans=1, num_classes=10).macs <= limit and doc["constraints"]["macs_max"] == limit
    scored = next(iter(result.scored.values()))
    assert doc["search_acc"] == max(c.acc for c in scored)
    assert 0 <= doc["val_acc"] <= 1 and 0 <= doc["test_acc"] <= 1  # reported beside the split that chose
    front = read_rows(tmp_path / "pareto.csv")
    macs = [float(r["macs"]) for r in front]
    assert macs == sorted(macs) and front and [int(r["point"]) for r in front] == list(range(len(front)))
    assert all(r["search_acc"] and r["val_acc"] and r["test_acc"] for r in front)


class _Toy:
    """A search problem without a model: accuracy grows with every choice, as cost does."""

    def __init__(self, space):
        self.space = space

    def complexity(self, arch: Arch):
        return complexity(self.space, arch, in_chans=1, num_classes=10)

    def latency(self, arch: Arch) -> float:
        return self.complexity(arch).macs / 1e6

    def score(self, arch: Arch, split: str):
        assert split == "search"
        dims = self.space.dimensions
        value = sum(
            d.choices.index(self.space.value(arch, d)) / (len(d.choices) - 1) for d in dims if len(d.choices) > 1
        )
        return type("S", (), {"accuracy": value / len(dims), "loss": 1.0 - value / len(dims)})()


def test_evolution_respects_limits_and_beats_random_at_equal_budget():
    space = load_space("tiny")
    limit = Constraints(macs_max=1_500_000, latency_ms_max=1.4)
    settings = EvolutionSettings(population=8, iterations=5, parents=4)
    evo_best, rnd_best = [], []
    for seed in range(3):
        search = Search(space, _Toy(space), limit)
        evo, rnd = search.evolution(settings, seed), search.random(settings.budget, seed)
        assert len({c.arch for c in evo}) == len({c.arch for c in rnd}) == settings.budget
        assert all(c.macs <= 1_500_000 and c.latency_ms <= 1.4 for c in evo + rnd)
        evo_best.append(best(evo).acc)
        rnd_best.append(best(rnd).acc)
    assert sum(evo_best) > sum(rnd_best), (evo_best, rnd_best)
    front = pareto_front(evo)
    assert all(a.macs < b.macs and a.fitness < b.fitness for a, b in zip(front, front[1:]))


def test_one_row_schema_for_every_table_of_children():
    """The training table, supernet-evaluate's table, supernet-search's tables and metrics.json all
    hold ChildReport rows: the same columns after each table's own, whatever was measured."""
    space = load_space("tiny")
    arch = space.resolve(ARCH)
    c = complexity(space, arch, in_chans=1, num_classes=10)
    settings = LatencySettings("cpu", batch_size=1, warmup=1, repeats=2, num_threads=1)
    full = ChildReport(
        arch,
        c,
        val_acc=0.5,
        val_loss=1.0,
        test_acc=0.4,
        test_loss=1.2,
        calib_batches=2,
        latency_ms=1.5,
        latency=settings,
    )
    row = full.row(child="mid")
    assert list(row)[:4] == ["child", "arch", "mmacs", "params_m"]
    assert row["macs"] == c.macs and row["params"] == c.params and row["latency_device"] == "cpu"
    assert full.to_dict()["latency"] == {
        "ms": 1.5,
        "device": "cpu",
        "batch_size": 1,
        "warmup": 1,
        "repeats": 2,
        "num_threads": 1,
        "backend": "eager",
        "table": None,
    }
    bare = ChildReport(arch, c).row()
    assert list(bare) == list(full.row()) and math.isnan(bare["val_acc"]) and bare["latency_device"] is None
    candidate = Candidate(arch, c.macs, c.params, None, 0.5, 1.0)  # no latency limit: not measured
    searched = candidate.report(SimpleNamespace(latency_settings=settings, calib_batches=2)).row(method="random")
    assert list(searched)[1:] == list(bare) and searched["latency_ms"] is None and searched["latency_device"] is None


def test_latency_measured_and_predicted():
    space = load_space("tiny")
    model = build(space, 10, 1).eval()
    settings = LatencySettings("cpu", batch_size=1, warmup=1, repeats=3, num_threads=1)
    table = LatencyTable(settings)
    gen = random.Random(0)
    sums, measured = [], []
    for _ in range(3):
        arch = space.sample(gen)
        child = model.extract(arch)
        shape = (1, arch.resolution, arch.resolution)
        sums.append(table.layer_sum(child, shape))
        measured.append(measure_latency(child, shape, "cpu", 1, 1, 3, 1))
    table.fit(sums, measured)
    assert all(m > 0 for m in measured) and len(table.layers) > 10
    assert table.predict(child, shape) > 0
    with pytest.raises(ValueError, match="latency.repeats"):
        measure_latency(child, shape, repeats=0)
    measure_latency(torch.nn.Conv2d(1, 4, 3), (1, 8, 8), "cpu", 1, 1, 2, num_threads=2)
    assert torch.get_num_threads() == 1  # pinned while timing only (the module's fixture sets 1)


def test_child_evaluator_requires_calibration_data(tiny_space):
    with pytest.raises(ValueError, match="calibration data is empty"):
        ChildEvaluator(build(tiny_space, 10, 1), [])


def test_bad_destinations_are_refused_before_any_work(ckpt, tmp_path):
    """Outputs that cannot be written are refused with a message naming them, before any child is
    measured, and nothing is left behind (no temporary files, no empty report folder)."""
    from supernet.analysis import save_report
    from supernet.cli.evaluate import run as evaluate
    from supernet.cli.extract import run as extract
    from supernet.cli.search import run as search

    a_folder, a_file = tmp_path / "folder", tmp_path / "file"
    a_folder.mkdir()
    a_file.write_text("x")
    base = [f"ckpt_path={ckpt}", *QUICK]
    with pytest.raises(ValueError, match="is a folder; give the path of a file"):
        evaluate(compose_config("evaluate", [*base, "children=[min]", f"output={a_folder}"], tmp_path / "ev"))
    with pytest.raises(ValueError, match="is a file, not a folder"):
        extract(compose_config("extract", [*base, "arch=min", f"out={a_file / 'child'}"], tmp_path / "ex"))
    with pytest.raises(ValueError, match="mutation_prob must be in"):
        search(compose_config("search", [*base, "mutation_prob=high"], tmp_path / "se"))
    not_a_run = tmp_path / "not_a_run"
    not_a_run.mkdir()
    with pytest.raises(FileNotFoundError, match="is not a supernet-train run directory"):
        save_report(not_a_run)
    broken = tmp_path / "broken_run"
    (broken / ".hydra").mkdir(parents=True)
    (broken / ".hydra" / "config.yaml").write_text("a: [unclosed")
    with pytest.raises(ValueError, match="config.yaml is not readable"):
        save_report(broken)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        save_report(ckpt.parent.parent, a_file / "report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken_run", "file", "folder", "not_a_run"]
    assert list(a_folder.iterdir()) == [] and list(not_a_run.iterdir()) == []
    assert sorted(p.name for p in broken.iterdir()) == [".hydra"]


def test_a_child_that_does_not_match_the_supernet_is_not_shipped(ckpt, tmp_path, monkeypatch):
    """Contract 1 is checked on every artifact before it is written: should extraction ever
    produce a child whose outputs differ from the supernet's, no artifact is written."""
    from supernet.cli.extract import run
    from supernet.models.base import Supernet

    extract = Supernet.extract

    def broken_extract(self, arch=None):
        child = extract(self, arch)
        with torch.no_grad():
            next(child.parameters()).add_(1.0)
        return child

    monkeypatch.setattr(Supernet, "extract", broken_extract)
    out = tmp_path / "child"
    with pytest.raises(RuntimeError, match="computes outputs .* away from the supernet's; no artifact written"):
        run(compose_config("extract", [f"ckpt_path={ckpt}", "arch=min", f"out={out}", *QUICK], tmp_path))
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_search_on_the_held_out_split_and_a_point_of_its_front(ckpt, tmp_path):
    """The checkpoint records the search split its training held out; a Pareto search with a
    predictor prescreen scores on it, draws its front, saves its predictor, and supernet-extract
    takes a point of the front by its row. A checkpoint trained on every image is refused, unless
    split=val says to search on validation."""
    from supernet.cli.evaluate import run as evaluate
    from supernet.cli.extract import run as extract
    from supernet.cli.search import run

    assert load_checkpoint(ckpt).meta["search_split"]["size"] == 200  # conf/data/digits.yaml
    settings = ["population=4", "iterations=2", "parents=2", *QUICK]
    out = tmp_path / "search"
    run(compose_config("search", [f"ckpt_path={ckpt}", *settings, "objective=pareto", "prescreen=predictor"], out))
    front = read_rows(out / "pareto.csv")
    assert (out / "pareto.png").stat().st_size > 0 and (out / "predictor.json").is_file()
    history = read_rows(out / "history.csv")
    assert all(r["search_acc"] and not r["val_acc"] for r in history)  # validation does not choose
    point = front[-1]
    metrics = extract(
        compose_config(
            "extract",
            [f"ckpt_path={ckpt}", f"arch={out / 'pareto.csv'}:{point['point']}", "onnx=false", *QUICK],
            tmp_path,
        )
    )
    assert metrics["arch"] == point["arch"] and metrics["search_acc"] == pytest.approx(float(point["search_acc"]))

    rows = evaluate(
        compose_config("evaluate", [f"ckpt_path={ckpt}", "children=[min,max]", "epsinas=true", *QUICK], tmp_path)
    )
    assert all(r["epsinas"] > 0 and 0 <= r["search_acc"] <= 1 for r in rows)

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["supernet"]["search_split"]  # as trained before search splits, or with data.search_size=0
    every_image = tmp_path / "every_image.ckpt"
    torch.save(state, every_image)
    with pytest.raises(ValueError, match="trained on every training image: no search split is held out.*split=val"):
        run(compose_config("search", [f"ckpt_path={every_image}", *settings], tmp_path / "refused"))
    run(compose_config("search", [f"ckpt_path={every_image}", *settings, "split=val"], tmp_path / "on_val"))
    assert all(r["val_acc"] and not r["search_acc"] for r in read_rows(tmp_path / "on_val" / "history.csv"))
    with pytest.raises(ValueError, match="objective='front' is not one of"):
        run(compose_config("search", [f"ckpt_path={ckpt}", *settings, "objective=front"], tmp_path / "bad"))
