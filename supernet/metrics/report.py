"""What is reported of one child: the one row schema of every table and file that describes children.

The final table of ``supernet-train``, the table of ``supernet-evaluate``, ``history.csv`` and
``pareto.csv`` of ``supernet-search``, an artifact's ``metrics.json`` and the tables that
``supernet.analysis`` reads are all made of ``ChildReport`` rows, so they share their columns:

    arch                         the arch string
    mmacs, params_m              multiply-adds and parameters in millions (to read)
    macs, params                 the exact counts (to compare with limits)
    search_acc, search_loss      on the search split held out of training, after BN recalibration
                                 (what a search ranks by; NaN: not measured)
    val_acc, val_loss            after BN recalibration (NaN: not measured)
    test_acc, test_loss
    calib_batches                training batches of that BN recalibration
    latency_ms                   median latency of the extracted child (empty: not measured), and
    latency_device, latency_batch_size, latency_warmup, latency_repeats, latency_num_threads,
    latency_backend              how it was measured (``eager`` PyTorch or ``onnxruntime``)
    latency_table                the lookup-table file that predicted ``latency_ms`` (empty: measured)

``metrics.json`` keeps the latency and its settings together under ``latency`` (``ms``,
``device``, ...); tables spread them into the ``latency_<key>`` columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from supernet.metrics.complexity import Complexity
from supernet.metrics.latency import LatencySettings
from supernet.space import Arch


@dataclass(frozen=True)
class ChildReport:
    arch: Arch
    complexity: Complexity
    search_acc: float = math.nan
    search_loss: float = math.nan
    val_acc: float = math.nan
    val_loss: float = math.nan
    test_acc: float = math.nan
    test_loss: float = math.nan
    calib_batches: int | None = None
    latency_ms: float | None = None
    latency: LatencySettings | None = None  # how ``latency_ms`` was measured

    def to_dict(self) -> dict[str, Any]:
        """The report with its latency as one mapping (``metrics.json``)."""
        c, s = self.complexity, self.latency if self.latency_ms is not None else None
        return {
            "arch": str(self.arch),
            "mmacs": c.macs / 1e6,
            "params_m": c.params / 1e6,
            "macs": c.macs,
            "params": c.params,
            "search_acc": self.search_acc,
            "search_loss": self.search_loss,
            "val_acc": self.val_acc,
            "val_loss": self.val_loss,
            "test_acc": self.test_acc,
            "test_loss": self.test_loss,
            "calib_batches": self.calib_batches,
            "latency": {
                "ms": self.latency_ms,
                "device": s.device if s else None,
                "batch_size": s.batch_size if s else None,
                "warmup": s.warmup if s else None,
                "repeats": s.repeats if s else None,
                # threads only bound a CPU measurement
                "num_threads": s.num_threads if s and s.device == "cpu" else None,
                "backend": s.backend if s else None,
                # set: ``ms`` is the prediction of this lookup-table file, not a measurement
                "table": s.table if s else None,
            },
        }

    def row(self, **context: Any) -> dict[str, Any]:
        """One table row: the ``context`` columns first (what the table adds: the child's name,
        where it came from, the search that scored it), then the report, latency spread into
        ``latency_<key>`` columns."""
        report = self.to_dict()
        latency = report.pop("latency")
        return {**context, **report, **{f"latency_{key}": value for key, value in latency.items()}}
