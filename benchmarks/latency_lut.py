"""Latency lookup table vs measurement (issues 6 and 16): how well per-layer timings predict a
child's latency, per backend (eager PyTorch, onnxruntime).

``supernet.metrics.LatencyTable`` times every leaf layer of extracted children alone (median of
repeats; for onnxruntime, each layer exported alone) and predicts a child as
``scale * sum(layer times) + offset``, with ``scale``/``offset`` fitted on children measured whole:
the space's min, mid and max children, as ``latency.table`` does, plus ``--fit`` random ones.
Reported per backend, on the same ``--test`` random children: the relative error of the
prediction against the child measured whole (mean and max), the Kendall tau between predicted and
measured latencies (does the table order children as the runtime does?), and the time a
prediction takes once the table is warm.

    python benchmarks/latency_lut.py --space tiny --test 32 --backend eager onnxruntime --write
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table

from supernet.child.evaluation import TABLE_FIT_CHILDREN
from supernet.metrics import LatencySettings, LatencyTable
from supernet.metrics.latency import BACKENDS
from supernet.metrics.ranking import kendall_tau
from supernet.models import build
from supernet.space import Arch, load_space

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class Outcome:
    table: LatencyTable
    build_s: float
    measured: list[float]
    predicted: list[float]
    predict_ms: list[float]

    @property
    def errors(self) -> list[float]:
        return [abs(p - m) / m for p, m in zip(self.predicted, self.measured)]

    def cells(self, i: int) -> list[str]:
        """The ``i``-th test child's measured and predicted ms and error %."""
        return [f"{self.measured[i]:.3f}", f"{self.predicted[i]:.3f}", f"{100 * self.errors[i]:.1f}"]

    def summary(self, backend: str) -> list[str]:
        t = self.table
        return [
            backend,
            f"{100 * statistics.mean(self.errors):.1f}",
            f"{100 * max(self.errors):.1f}",
            f"{kendall_tau(self.predicted, self.measured):.3f}",
            f"{t.scale:.3f} / {t.offset:.3f}",
            str(len(t.layers)),
            f"{self.build_s:.0f}",
            f"{statistics.median(self.predict_ms):.0f}",
        ]


def run_backend(model, settings: LatencySettings, fit: list[Arch], test: list[Arch], in_chans: int) -> Outcome:
    """Build a table fitted on ``fit`` children, then predict and measure each ``test`` child."""

    def child(arch):
        return model.extract(arch).eval(), (in_chans, arch.resolution, arch.resolution)

    table = LatencyTable(settings)
    start = time.time()
    table.fit_children((str(arch), *child(arch)) for arch in fit)
    outcome = Outcome(table, time.time() - start, [], [], [])
    for arch in test:
        module, shape = child(arch)
        t0 = time.perf_counter()
        outcome.predicted.append(table.predict(module, shape))
        outcome.predict_ms.append((time.perf_counter() - t0) * 1e3)
        outcome.measured.append(settings.measure(module, shape))
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--in-chans", type=int, default=1)
    parser.add_argument(
        "--fit",
        type=int,
        default=0,
        help="random children measured whole to fit, besides min, mid, max (0: as latency.table)",
    )
    parser.add_argument("--test", type=int, default=16, help="random children to compare prediction and measurement")
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=["eager"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="append the tables to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.test < 2:
        parser.error("--test needs at least 2 children (a Kendall tau compares pairs)")
    torch.set_num_threads(args.threads)

    space = load_space(args.space)
    model = build(space, 10, args.in_chans).eval()
    gen = random.Random(0)  # the same children for every backend
    fit = [space.resolve(name) for name in TABLE_FIT_CHILDREN] + [space.sample(gen) for _ in range(args.fit)]
    test = [space.sample(gen) for _ in range(args.test)]
    outcomes = {}
    for backend in args.backend:
        settings = LatencySettings("cpu", args.batch, args.warmup, args.repeats, args.threads, backend)
        outcomes[backend] = run_backend(model, settings, fit, test, args.in_chans)

    columns = ["backend", "mean error %", "max error %", "Kendall tau", "scale / offset ms", "layer entries"]
    columns += ["table built in s", "prediction ms"]
    summary = markdown_table(columns, [outcome.summary(backend) for backend, outcome in outcomes.items()])
    header = ["arch"] + [f"{b} {what}" for b in outcomes for what in ("measured ms", "predicted ms", "error %")]
    rows = [[f"`{arch}`"] + [cell for o in outcomes.values() for cell in o.cells(i)] for i, arch in enumerate(test)]
    children = markdown_table(header, rows)
    print(children + "\n\n" + summary)
    if args.write:
        command = "python benchmarks/latency_lut.py " + " ".join(sys.argv[1:])
        with RESULTS.open("a") as f:
            f.write(
                f"\n## Latency lookup table vs measurement, per backend (issue 16)\n\n"
                f"Median latency of extracted children (batch {args.batch}, {args.repeats} repeats, CPU) measured "
                f"whole vs predicted from per-layer timings (`supernet.metrics.LatencyTable`, fitted on min, mid, "
                f"max and {args.fit} random children), on {args.test} random children; the prediction takes "
                f"shape propagation plus the timing of layers not yet in the table.\n\n"
                f"`{command}` — {machine()}:\n\n{summary}\n\n{children}\n"
            )
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
