"""Latency of any module: measured (median of timed repeats) or predicted from a per-layer table.

Timed with ``torch.utils.benchmark.Timer``: it synchronises the accelerator before reading the
clock, so queued kernels are not mistaken for finished ones, and it pins the number of CPU threads
(``num_threads``; restored afterwards) because the default (all cores) makes numbers depend on the
machine's load and core count. Each timed call is one ``Timer.timeit(number=1)``, which makes two
untimed calls of its own first.

Two backends run the module: ``eager`` (PyTorch itself) and ``onnxruntime`` (the module exported to
ONNX in memory and run by an onnxruntime CPU session: what a deployment runtime makes of it, with
its operator fusions). Both are timed by the same code (``median_times``).

The lookup table (``LatencyTable``) is saved as a JSON file that records the settings it was
measured with, so later runs reuse its layer timings and refuse it under other settings.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import statistics
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.utils import benchmark

from supernet.errors import first_line
from supernet.files import atomic_file

BACKENDS = ("eager", "onnxruntime")
ONNXRUNTIME_PACKAGES = ("onnxruntime", "onnx", "onnxscript")  # the runtime, and what torch's ONNX exporter needs


@dataclass(frozen=True)
class LatencySettings:
    """How a latency number was measured (reported next to it)."""

    device: str = "cpu"
    batch_size: int = 1
    warmup: int = 10
    repeats: int = 50
    num_threads: int | None = 1  # CPU only; None keeps torch's current setting
    backend: str = "eager"  # what runs the module: one of BACKENDS
    table: str | None = None  # a LatencyTable JSON file: latencies are predicted from it (created if missing)

    def __post_init__(self) -> None:
        for name in ("batch_size", "repeats"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"latency.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"latency.warmup must be a non-negative integer, got {self.warmup!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"latency.num_threads must be a positive integer or null, got {self.num_threads!r}")
        if self.table is not None and (not isinstance(self.table, str) or not self.table):
            raise ValueError(f"latency.table must be the path of a JSON file or null, got {self.table!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"latency.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "onnxruntime":
            self._check_onnxruntime()
            if self.table is not None:
                warnings.warn(
                    "latency.table under latency.backend=onnxruntime predicts poorly (17% mean error, Kendall "
                    "tau 0.38 against measurement in benchmarks/RESULTS.md: the runtime fuses across layers) "
                    "and slowly; measure whole children instead (latency.table=null)",
                    stacklevel=2,
                )

    def _check_onnxruntime(self) -> None:
        # checked here, so that a bad config stops before any work, not at the first child timed
        if torch.device(self.device).type != "cpu":
            raise ValueError(
                f"latency.backend=onnxruntime runs on the CPU only: set latency.device=cpu (got {self.device})"
            )
        missing = [name for name in ONNXRUNTIME_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise ValueError(
                f"latency.backend=onnxruntime needs `pip install supernet[onnxruntime]` (missing: {', '.join(missing)})"
            )

    def measured_with(self) -> dict[str, Any]:
        """What a latency number depends on: every setting but the table that may hold it."""
        return {k: v for k, v in asdict(self).items() if k != "table"}

    def measure(self, module: nn.Module, input_shape: Sequence[int]) -> float:
        """``measure_latency`` of ``module`` (on ``device``) with these settings."""
        return measure_latency(
            module, input_shape, self.device, self.batch_size, self.warmup, self.repeats, self.num_threads, self.backend
        )


def median_times(
    fns: Sequence[Callable[[], object]], warmup: int, repeats: int, num_threads: int | None = None
) -> list[float]:
    """Median seconds of one call of each of ``fns``: ``warmup`` untimed calls of each, then
    ``repeats`` timed calls of each, interleaved (a, b, a, b, ...) so that drifts of the machine
    (clock frequency, other load) hit every candidate alike. Every call runs on ``num_threads``
    CPU threads (None: torch's current number), restored afterwards."""
    threads = torch.get_num_threads() if num_threads is None else num_threads
    timers = [benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads) for fn in fns]
    with benchmark.set_torch_threads(threads):
        for _ in range(warmup):
            for fn in fns:
                fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for timer, out in zip(timers, times):
            out.append(timer.timeit(number=1).median)
    return [statistics.median(t) for t in times]


def onnx_program(model: nn.Module | torch.export.ExportedProgram, example: torch.Tensor) -> torch.onnx.ONNXProgram:
    """ONNX export of ``model`` (torch's dynamo exporter) for the input ``example``, in memory:
    ``.save(path)`` writes it, ``.model_proto`` is the ONNX model. Needs onnx and onnxscript."""
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints progress lines
        return torch.onnx.export(model, (example,), dynamo=True, verbose=False)


def onnxruntime_session(module: nn.Module, example: torch.Tensor, num_threads: int):
    """An onnxruntime CPU session of ``module`` (eval mode, on the CPU) exported for the input
    ``example``: ``num_threads`` threads within an operator and operators run one at a time
    (inter-op 1), as PyTorch runs them, so that the backends compare on the same cores."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    model = onnx_program(module, example).model_proto.SerializeToString()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def forward_call(module: nn.Module, x: torch.Tensor, backend: str, num_threads: int) -> Callable[[], object]:
    """One forward of ``module`` on ``x`` by ``backend``, as a call to time."""
    if backend == "eager":
        return lambda: module(x)
    session = onnxruntime_session(module, x, num_threads)
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


@torch.inference_mode()
def measure_latency(
    module: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    num_threads: int | None = 1,
    backend: str = "eager",
) -> float:
    """Median milliseconds of one forward of ``module`` (eval mode, already on ``device``) by
    ``backend`` on a random batch of ``batch_size`` inputs of shape ``input_shape`` (one sample,
    e.g. ``(3, 224, 224)``)."""
    settings = LatencySettings(str(device), batch_size, warmup, repeats, num_threads, backend)
    device = torch.device(device)
    was_training = module.training
    module.eval()
    x = torch.randn(settings.batch_size, *input_shape, device=device)
    try:
        threads = settings.num_threads if device.type == "cpu" else None
        call = forward_call(module, x, settings.backend, threads or torch.get_num_threads())
        (seconds,) = median_times([call], settings.warmup, settings.repeats, threads)
    finally:
        module.train(was_training)
    return seconds * 1e3


# -- lookup-table predictor ---------------------------------------------------------------------


def layer_key(layer: nn.Module, input_shape: Sequence[int]) -> str:
    """What a layer's time depends on: its type and hyper-parameters (``repr``) and its input shape."""
    return f"{layer!r}@{tuple(input_shape)}"


def layer_calls(child: torch.fx.GraphModule, input_shape: Sequence[int]) -> list[tuple[str, nn.Module, tuple]]:
    """``(key, layer, input shape)`` of every leaf-module call of ``child`` on a batch of shape
    ``input_shape``, found by shape propagation on fake tensors (nothing is computed)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        x = torch.empty(*input_shape)
    ShapeProp(child, fake_mode=mode).propagate(x)
    calls = []
    for node in child.graph.nodes:
        if node.op == "call_module":
            layer, shape = child.get_submodule(node.target), tuple(node.args[0].meta["tensor_meta"].shape)
            calls.append((layer_key(layer, shape), layer, shape))
    return calls


TABLE_FORMAT = "supernet-latency-table/1"


@dataclass
class LatencyTable:
    """Per-layer latencies (median ms, each leaf layer timed alone by the settings' backend; for
    onnxruntime, each layer exported alone) of extracted children, keyed by ``layer_key``; layers
    not yet in the table are timed when first met, so the table fills up as children are predicted.

    A child's latency is predicted as ``scale * sum(layer times) + offset``; ``fit`` sets ``scale``
    and ``offset`` (least squares) from children whose latency was measured whole, to absorb what
    per-layer timing misses (residual adds, dispatch between layers, cache effects, the operator
    fusions of onnxruntime). ``fit_points`` records those children.
    """

    settings: LatencySettings
    layers: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0
    offset: float = 0.0
    fit_points: list[dict[str, Any]] = field(default_factory=list)

    def layer_sum(self, child: torch.fx.GraphModule, input_shape: Sequence[int]) -> float:
        """Sum of the table's times of ``child``'s layers (one-sample input shape ``input_shape``)."""
        total = 0.0
        for key, layer, shape in layer_calls(child, (self.settings.batch_size, *input_shape)):
            if key not in self.layers:
                self.layers[key] = self.settings.measure(layer, shape[1:])
            total += self.layers[key]
        return total

    def fit(self, layer_sums: Iterable[float], measured: Iterable[float]) -> None:
        xs, ys = torch.tensor(list(layer_sums), dtype=torch.float64), torch.tensor(list(measured), dtype=torch.float64)
        a = torch.stack([xs, torch.ones_like(xs)], 1)
        self.scale, self.offset = (float(v) for v in torch.linalg.lstsq(a, ys[:, None]).solution.flatten())

    def fit_children(self, children: Iterable[tuple[str, torch.fx.GraphModule, Sequence[int]]]) -> None:
        """``fit`` on ``(name, child, one-sample input shape)`` children, each measured whole."""
        self.fit_points = [
            {
                "child": name,
                "layer_sum_ms": self.layer_sum(child, shape),
                "measured_ms": self.settings.measure(child, shape),
            }
            for name, child, shape in children
        ]
        self.fit([p["layer_sum_ms"] for p in self.fit_points], [p["measured_ms"] for p in self.fit_points])

    def predict(self, child: torch.fx.GraphModule, input_shape: Sequence[int]) -> float:
        """Predicted median ms of ``child`` on inputs of one-sample shape ``input_shape``."""
        return self.scale * self.layer_sum(child, input_shape) + self.offset

    def save(self, path: str | Path) -> None:
        """Write the table to the JSON file ``path`` atomically, keeping the layers that another run
        (e.g. a parallel sweep job) added to that file since this table was read."""
        if Path(path).exists():
            self.layers = {**LatencyTable.load(path, self.settings).layers, **self.layers}
        document = {
            "format": TABLE_FORMAT,
            "settings": self.settings.measured_with(),
            "scale": self.scale,
            "offset": self.offset,
            "fit": self.fit_points,
            "layers": self.layers,
        }
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(document, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, settings: LatencySettings) -> LatencyTable:
        """The table saved at ``path``; refused when it was measured with other ``settings``."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"latency.table {path} cannot be read as JSON: {first_line(err)}") from None
        if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT:
            raise ValueError(f"latency.table {path} is not a latency table file ({TABLE_FORMAT})")
        try:
            recorded = dict(doc["settings"])
            layers = {str(key): float(ms) for key, ms in doc["layers"].items()}
            table = cls(settings, layers, float(doc["scale"]), float(doc["offset"]), list(doc["fit"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"latency.table {path} is a damaged latency table file (delete it to remeasure)") from None
        differ = [
            f"{key}={recorded.get(key)!r} there, {value!r} here"
            for key, value in settings.measured_with().items()
            if recorded.get(key) != value
        ]
        if differ:
            raise ValueError(
                f"latency.table {path} was measured with other latency settings ({'; '.join(differ)}): "
                "use the same settings or another table file"
            )
        return table
