"""Latency on a deployment runtime (onnxruntime) and the lookup-table file that later runs reuse."""

import importlib.util
import json
import math
import random

import pytest
import torch
from torch import nn

import supernet.metrics.latency as latency_module
from supernet.child import ChildEvaluator
from supernet.metrics import ChildReport, LatencySettings, LatencyTable, complexity, measure_latency
from supernet.metrics.latency import onnxruntime_session
from supernet.models import build

NO_ONNXRUNTIME = "the onnxruntime extra is not installed (pip install supernet[onnxruntime])"
FAST = {"device": "cpu", "batch_size": 1, "warmup": 1, "repeats": 2, "num_threads": 1}


@pytest.fixture(scope="module")
def model(tiny_space):
    return build(tiny_space, 10, 1).eval()


def evaluator(model, **latency) -> ChildEvaluator:
    calibration = [(torch.randn(2, 1, 16, 16), torch.zeros(2, dtype=torch.long))]  # latency needs none
    return ChildEvaluator(model, calibration, latency=LatencySettings(**{**FAST, **latency}))


def test_bad_backends_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="latency.backend must be one of eager, onnxruntime, got 'tensorrt'"):
        LatencySettings(backend="tensorrt")
    with pytest.raises(ValueError, match="latency.backend must be one of"):
        measure_latency(nn.ReLU(), (4,), backend="tvm")
    with pytest.raises(ValueError, match="onnxruntime runs on the CPU only"):
        LatencySettings(device="cuda", backend="onnxruntime")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ValueError, match=r"needs `pip install supernet\[onnxruntime\]` \(missing: onnxruntime\)"):
        LatencySettings(backend="onnxruntime")


def test_onnxruntime_latency_of_a_child(model, tiny_space):
    pytest.importorskip("onnxruntime", reason=NO_ONNXRUNTIME)
    arch = tiny_space.resolve("mid")
    ev = evaluator(model, backend="onnxruntime")
    ms = ev.latency(arch)
    assert ms > 0 and math.isfinite(ms)
    child = model.extract(arch).eval()
    x = torch.randn(1, *ev.input_shape(arch))
    session = onnxruntime_session(child, x, num_threads=1)
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), child(x), atol=1e-4, rtol=0)
    row = ChildReport(
        arch, complexity(tiny_space, arch, in_chans=1, num_classes=10), latency_ms=ms, latency=ev.latency_settings
    ).row()
    assert row["latency_backend"] == "onnxruntime" and row["latency_table"] is None


def test_onnxruntime_table_times_each_layer_alone():
    pytest.importorskip("onnxruntime", reason=NO_ONNXRUNTIME)
    table = LatencyTable(LatencySettings(**FAST, backend="onnxruntime"))
    child = torch.fx.symbolic_trace(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval())
    assert table.layer_sum(child, (1, 8, 8)) > 0 and len(table.layers) == 2


def test_a_table_under_onnxruntime_is_allowed_with_a_warning(tmp_path):
    pytest.importorskip("onnxruntime", reason=NO_ONNXRUNTIME)
    with pytest.warns(UserWarning, match="measure whole children instead"):
        LatencySettings(backend="onnxruntime", table=str(tmp_path / "lut.json"))


def test_table_file_is_made_then_reused(model, tiny_space, tmp_path, monkeypatch):
    path = tmp_path / "lut.json"
    arch = tiny_space.sample(random.Random(1))
    first = evaluator(model, table=str(path))
    predicted = first.latency(arch)
    doc = json.loads(path.read_text())
    assert doc["settings"] == {**FAST, "backend": "eager"}
    assert [p["child"] for p in doc["fit"]] == [str(tiny_space.resolve(n)) for n in ("min", "mid", "max")]
    assert len(doc["layers"]) == len(first.latency_table().layers) > 10

    def no_timing(*args, **kwargs):
        raise AssertionError("a layer was timed although the table file holds it")

    monkeypatch.setattr(latency_module, "median_times", no_timing)
    second = evaluator(model, table=str(path))
    assert second.latency(arch) == pytest.approx(predicted, rel=1e-12)
    assert json.loads(path.read_text()) == doc  # nothing new to save
    row = ChildReport(
        arch,
        complexity(tiny_space, arch, in_chans=1, num_classes=10),
        latency_ms=predicted,
        latency=second.latency_settings,
    )
    assert row.row()["latency_table"] == str(path) and row.row()["latency_backend"] == "eager"


def test_table_file_of_other_settings_is_refused(model, tmp_path):
    path = tmp_path / "lut.json"
    LatencyTable(LatencySettings(**FAST, table=str(path))).save(path)
    with pytest.raises(ValueError, match=r"other latency settings \(repeats=2 there, 5 here\)"):
        evaluator(model, table=str(path), repeats=5)
    path.write_text(json.dumps({"layers": {}}))
    with pytest.raises(ValueError, match="is not a latency table file"):
        evaluator(model, table=str(path))
    path.write_text("not json")
    with pytest.raises(ValueError, match="cannot be read as JSON"):
        evaluator(model, table=str(path))
    with pytest.raises(ValueError, match="latency.table .* is a folder"):
        evaluator(model, table=str(tmp_path))
