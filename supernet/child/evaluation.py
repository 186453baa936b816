"""Evaluate children of a loaded supernet: BN recalibration on cached batches, accuracy, latency.

The calibration batches are read from the data loader once and kept as tensors, so every child
costs only its calibration forwards and its evaluation forwards — what makes a search over
hundreds of children affordable. Latency is measured, or predicted from a lookup-table file
(``latency.table``) that later runs reuse.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from supernet.files import check_file_destination
from supernet.metrics.complexity import Complexity, complexity
from supernet.metrics.latency import LatencySettings, LatencyTable
from supernet.metrics.report import ChildReport
from supernet.models import Supernet
from supernet.models.calibration import calibrate_bn
from supernet.ops import resize_to
from supernet.space import Arch

Batch = tuple[torch.Tensor, torch.Tensor]

# measured whole to fit the scale/offset of a new latency table: the space's extremes and middle
# span its range of latencies, at the cost of three measurements
TABLE_FIT_CHILDREN = ("min", "mid", "max")


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:<i>``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r} is not a device (auto, cpu, cuda, cuda:<i>)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here (use device=cpu)")
    return resolved


def materialise(batches: Iterable, limit: int | None, device: torch.device) -> list[Batch]:
    """The first ``limit`` (all when ``None``) ``(x, y, ...)`` batches as ``(x, y)`` tensors on ``device``."""
    out = []
    for batch in batches:
        if limit is not None and len(out) >= limit:
            break
        out.append((batch[0].to(device), batch[1].to(device)))
    return out


@dataclass
class Score:
    accuracy: float
    loss: float
    count: int


@torch.no_grad()
def score(model: nn.Module, batches: Iterable, resolution: int, device: torch.device) -> Score:
    """Top-1 accuracy and mean cross-entropy of ``model`` (eval mode) over ``(x, y, ...)`` batches."""
    model.eval()
    correct, loss, count = 0, 0.0, 0
    for batch in batches:
        x, y = batch[0].to(device), batch[1].to(device)
        logits = model(resize_to(x, resolution))
        correct += int((logits.argmax(1) == y).sum())
        loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        count += y.numel()
    if count == 0:
        raise ValueError("the evaluation split is empty")
    return Score(correct / count, loss / count, count)


class ChildEvaluator:
    """Recalibrates, extracts and scores children of ``model`` on fixed, cached data.

    ``val`` / ``test`` are cached batch lists or loaders (a loader is iterated on every call).
    """

    def __init__(
        self,
        model: Supernet,
        calibration: list[Batch],
        val: Iterable | None = None,
        test: Iterable | None = None,
        device: torch.device = torch.device("cpu"),
        latency: LatencySettings | None = None,
        search: Iterable | None = None,
    ):
        if not calibration:
            raise ValueError("BN recalibration got no batches: the calibration data is empty")
        self.model, self.calibration, self.val, self.test = model.to(device), calibration, val, test
        self.search = search  # the split held out of training for searches (None: not read)
        self.device = device
        self.latency_settings = latency or LatencySettings(device=str(device))
        self._latency: dict[Arch, float] = {}
        self._table = self._read_table()

    def _read_table(self) -> LatencyTable | None:
        """The ``latency.table`` file's table, read now so that a table of other settings is refused
        before any work; None when no table is set or the file is still to be made."""
        path = self.latency_settings.table
        if path is None or not check_file_destination(path, "latency.table").exists():
            return None
        return LatencyTable.load(path, self.latency_settings)

    def complexity(self, arch: Arch) -> Complexity:
        return complexity(self.model.space, arch, in_chans=self.model.in_chans, num_classes=self.model.num_classes)

    def calibrate(self, arch: Arch) -> None:
        """Set ``arch`` and recompute its BN statistics on the cached calibration batches."""
        calibrate_bn(self.model, self.calibration, len(self.calibration), arch=arch)
        self.model.eval()

    def score(self, arch: Arch, split: str) -> Score:
        """Accuracy and loss of ``arch`` on ``split`` (``search``, ``val`` or ``test``) after recalibration."""
        data = {"search": self.search, "val": self.val, "test": self.test}[split]
        if data is None:
            raise ValueError(f"no {split} data was given to the evaluator")
        self.calibrate(arch)
        return score(self.model, data, arch.resolution, self.device)

    def extract(self, arch: Arch) -> torch.fx.GraphModule:
        """The recalibrated child as a plain module in eval mode (its own copy of the weights)."""
        self.calibrate(arch)
        return self.model.extract(arch).eval()

    def input_shape(self, arch: Arch) -> tuple[int, int, int]:
        return (self.model.in_chans, arch.resolution, arch.resolution)

    def latency(self, arch: Arch, child: nn.Module | None = None) -> float:
        """Median latency (ms) of the extracted child, once per arch: measured, or predicted by the
        ``latency.table`` file. BN statistics do not change the cost, so no recalibration is needed
        just to time a child."""
        if arch not in self._latency:
            s = self.latency_settings
            child = self._latency_child(arch, child)
            if s.table is None:
                self._latency[arch] = s.measure(child, self.input_shape(arch))
            else:
                self._latency[arch] = self._predict(child, self.input_shape(arch))
        return self._latency[arch]

    def _latency_child(self, arch: Arch, child: nn.Module | None = None) -> nn.Module:
        """``child`` (extracted when None) on the latency device."""
        if child is None:
            child = self.model.eval().extract(arch)
        if torch.device(self.latency_settings.device) != self.device:  # e.g. accuracy on the GPU, latency on the CPU
            child = copy.deepcopy(child).to(self.latency_settings.device)
        return child

    def _predict(self, child: nn.Module, input_shape: tuple[int, int, int]) -> float:
        """The table's prediction; the file is rewritten when the child brought layers not yet timed."""
        table = self.latency_table()
        known = len(table.layers)
        ms = table.predict(child, input_shape)
        if len(table.layers) > known:
            table.save(self.latency_settings.table)
        return ms

    def latency_table(self) -> LatencyTable:
        """The table of ``latency.table``; a new file is made at first use, fitted on the
        ``TABLE_FIT_CHILDREN`` of the space, measured whole."""
        if self._table is None:
            table = LatencyTable(self.latency_settings)
            archs = [self.model.space.resolve(name) for name in TABLE_FIT_CHILDREN]
            table.fit_children((str(arch), self._latency_child(arch), self.input_shape(arch)) for arch in archs)
            table.save(self.latency_settings.table)
            self._table = table
        return self._table

    @property
    def calib_batches(self) -> int:
        """Training batches of every BN recalibration."""
        return len(self.calibration)

    def report(self, arch: Arch) -> ChildReport:
        """Multiply-adds, params, latency, and search/val/test accuracy and loss after recalibration
        (scored with the extracted child, which computes what the supernet does)."""
        child = self.extract(arch)
        scores = {}
        for split, data in (("search", self.search), ("val", self.val), ("test", self.test)):
            if data is not None:
                result = score(child, data, arch.resolution, self.device)
                scores.update({f"{split}_acc": result.accuracy, f"{split}_loss": result.loss})
        return ChildReport(
            arch,
            self.complexity(arch),
            calib_batches=self.calib_batches,
            latency_ms=self.latency(arch, child),
            latency=self.latency_settings,
            **scores,
        )


def evaluator_for(
    model: Supernet,
    datamodule,
    *,
    calib_batches: int,
    device: torch.device,
    latency: LatencySettings | None = None,
    cache_val: bool = False,
    val_batches: int | None = None,
    test: bool = True,
    search: bool = False,
) -> ChildEvaluator:
    """A ``ChildEvaluator`` over the calibration/val/test data of ``datamodule`` (a supernet data
    module, set up here): ``calib_batches`` training batches are cached as tensors; the validation
    split is cached too with ``cache_val`` (repeated scoring, e.g. a search) and cut to
    ``val_batches`` batches when given. With ``search``, the search split held out of training is
    read too (cached: a search scores it over and over); the data must hold one out."""
    if not isinstance(calib_batches, int) or calib_batches < 1:
        raise ValueError(f"calib_batches must be a positive integer, got {calib_batches!r}")
    if val_batches is not None and (not isinstance(val_batches, int) or val_batches < 1):
        raise ValueError(f"val_batches must be a positive integer or null, got {val_batches!r}")
    datamodule.setup("fit")
    if (datamodule.num_classes, datamodule.in_chans) != (model.num_classes, model.in_chans):
        raise ValueError(
            f"the checkpoint's supernet was trained for {model.num_classes} classes and {model.in_chans} input "
            f"channel(s), the data ({type(datamodule).__name__}) has {datamodule.num_classes} and "
            f"{datamodule.in_chans}: pass the training data config (data=...)"
        )
    calibration = materialise(datamodule.calibration_dataloader(), calib_batches, device)
    val = datamodule.val_dataloader()
    if cache_val or val_batches is not None:
        val = materialise(val, val_batches, device)
    test_data = datamodule.test_dataloader() if test else None
    search_data = materialise(datamodule.search_dataloader(), None, device) if search else None
    return ChildEvaluator(model, calibration, val, test_data, device, latency, search_data)
