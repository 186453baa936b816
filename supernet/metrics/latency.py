"""Latency of any module: measured (median of timed repeats) or predicted from a per-layer table.

Timed with ``torch.utils.benchmark.Timer``: it synchronises the accelerator before reading the
clock, so queued kernels are not mistaken for finished ones, and it pins the number of CPU threads
(``num_threads``; restored afterwards) because the default (all cores) makes numbers depend on the
machine's load and core count. Each timed call is one ``Timer.timeit(number=1)``, which makes two
untimed calls of its own first.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn
from torch.utils import benchmark


@dataclass(frozen=True)
class LatencySettings:
    """How a latency number was measured (reported next to it)."""

    device: str = "cpu"
    batch_size: int = 1
    warmup: int = 10
    repeats: int = 50
    num_threads: int | None = 1  # CPU only; None keeps torch's current setting

    def __post_init__(self) -> None:
        for name in ("batch_size", "repeats"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"latency.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"latency.warmup must be a non-negative integer, got {self.warmup!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"latency.num_threads must be a positive integer or null, got {self.num_threads!r}")


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


@torch.inference_mode()
def measure_latency(
    module: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    num_threads: int | None = 1,
) -> float:
    """Median milliseconds of one forward of ``module`` (eval mode, already on ``device``) on a
    random batch of ``batch_size`` inputs of shape ``input_shape`` (one sample, e.g. ``(3, 224, 224)``)."""
    settings = LatencySettings(str(device), batch_size, warmup, repeats, num_threads)
    device = torch.device(device)
    was_training = module.training
    module.eval()
    x = torch.randn(settings.batch_size, *input_shape, device=device)
    try:
        threads = settings.num_threads if device.type == "cpu" else None
        (seconds,) = median_times([lambda: module(x)], settings.warmup, settings.repeats, threads)
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


@dataclass
class LatencyTable:
    """Per-layer latencies (median ms, each leaf layer timed alone) of extracted children, keyed by
    ``layer_key``; layers not yet in the table are timed when first met, so the table fills up as
    children are predicted.

    A child's latency is predicted as ``scale * sum(layer times) + offset``; ``fit`` sets ``scale``
    and ``offset`` (least squares) from children whose latency was measured whole, to absorb what
    per-layer timing misses (residual adds, dispatch between layers, cache effects).
    """

    settings: LatencySettings
    layers: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0
    offset: float = 0.0

    def layer_sum(self, child: torch.fx.GraphModule, input_shape: Sequence[int]) -> float:
        """Sum of the table's times of ``child``'s layers (one-sample input shape ``input_shape``)."""
        s = self.settings
        total = 0.0
        for key, layer, shape in layer_calls(child, (s.batch_size, *input_shape)):
            if key not in self.layers:
                self.layers[key] = measure_latency(
                    layer, shape[1:], s.device, shape[0], s.warmup, s.repeats, s.num_threads
                )
            total += self.layers[key]
        return total

    def fit(self, layer_sums: Iterable[float], measured: Iterable[float]) -> None:
        xs, ys = torch.tensor(list(layer_sums), dtype=torch.float64), torch.tensor(list(measured), dtype=torch.float64)
        a = torch.stack([xs, torch.ones_like(xs)], 1)
        self.scale, self.offset = (float(v) for v in torch.linalg.lstsq(a, ys[:, None]).solution.flatten())

    def predict(self, child: torch.fx.GraphModule, input_shape: Sequence[int]) -> float:
        """Predicted median ms of ``child`` on inputs of one-sample shape ``input_shape``."""
        return self.scale * self.layer_sum(child, input_shape) + self.offset
