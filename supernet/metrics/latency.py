"""Latency of any module: measured (median of timed repeats) or predicted from a per-layer table.

CPU timings pin the number of threads (``num_threads``; restored afterwards) because the default
(all cores) makes numbers depend on the machine's load and core count. CUDA timings use CUDA
events around each repeat and synchronise, so queued kernels are not mistaken for finished ones.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn


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


@contextlib.contextmanager
def pinned_threads(device: torch.device, num_threads: int | None):
    if device.type != "cpu" or num_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _timed_runs(fn, device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
    return times


@torch.inference_mode()
def measure_latency(module: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu",
                    batch_size: int = 1, warmup: int = 10, repeats: int = 50,
                    num_threads: int | None = 1) -> float:
    """Median milliseconds of one forward of ``module`` (eval mode, already on ``device``) on a
    random batch of ``batch_size`` inputs of shape ``input_shape`` (one sample, e.g. ``(3, 224, 224)``)."""
    settings = LatencySettings(str(device), batch_size, warmup, repeats, num_threads)
    device = torch.device(device)
    was_training = module.training
    module.eval()
    x = torch.randn(settings.batch_size, *input_shape, device=device)
    try:
        with pinned_threads(device, settings.num_threads):
            times = _timed_runs(lambda: module(x), device, settings.warmup, settings.repeats)
    finally:
        module.train(was_training)
    return statistics.median(times)


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
                self.layers[key] = measure_latency(layer, shape[1:], s.device, shape[0], s.warmup, s.repeats,
                                                   s.num_threads)
            total += self.layers[key]
        return total

    def fit(self, layer_sums: Iterable[float], measured: Iterable[float]) -> None:
        xs, ys = torch.tensor(list(layer_sums), dtype=torch.float64), torch.tensor(list(measured), dtype=torch.float64)
        a = torch.stack([xs, torch.ones_like(xs)], 1)
        self.scale, self.offset = (float(v) for v in torch.linalg.lstsq(a, ys[:, None]).solution.flatten())

    def predict(self, child: torch.fx.GraphModule, input_shape: Sequence[int]) -> float:
        """Predicted median ms of ``child`` on inputs of one-sample shape ``input_shape``."""
        return self.scale * self.layer_sum(child, input_shape) + self.offset
