"""Latency lookup table vs measurement (issue 6): how well per-layer timings predict a child's latency.

``supernet.metrics.LatencyTable`` times every leaf layer of extracted children alone (median of
repeats) and predicts a child as ``scale * sum(layer times) + offset``, with ``scale``/``offset``
fitted on ``--fit`` children measured whole. Reported: the relative error of the prediction on
``--test`` other random children against ``measure_latency`` of the whole child, and the time a
prediction takes once the table is warm.

    python benchmarks/latency_lut.py --space tiny --fit 16 --test 16 --write
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table

from supernet.metrics import LatencySettings, LatencyTable, measure_latency
from supernet.models import build
from supernet.space import load_space

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--in-chans", type=int, default=1)
    parser.add_argument("--fit", type=int, default=16, help="children measured whole to fit scale/offset")
    parser.add_argument("--test", type=int, default=16, help="other children to compare prediction and measurement")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    space = load_space(args.space)
    model = build(space, 10, args.in_chans).eval()
    settings = LatencySettings("cpu", args.batch, warmup=5, repeats=args.repeats, num_threads=args.threads)
    table = LatencyTable(settings)
    gen = random.Random(0)

    def child(arch):
        return model.extract(arch).eval(), (args.in_chans, arch.resolution, arch.resolution)

    def measure(module, shape):
        return measure_latency(module, shape, "cpu", args.batch, 5, args.repeats, args.threads)

    start = time.time()
    sums, measured = [], []
    for _ in range(args.fit):
        module, shape = child(space.sample(gen))
        sums.append(table.layer_sum(module, shape))
        measured.append(measure(module, shape))
    table.fit(sums, measured)
    build_s = time.time() - start

    errors, rows, predict_ms = [], [], []
    for _ in range(args.test):
        arch = space.sample(gen)
        module, shape = child(arch)
        t0 = time.perf_counter()
        predicted = table.predict(module, shape)
        predict_ms.append((time.perf_counter() - t0) * 1e3)
        actual = measure(module, shape)
        errors.append(abs(predicted - actual) / actual)
        rows.append([f"`{arch}`", f"{actual:.3f}", f"{predicted:.3f}", f"{100 * errors[-1]:.1f}"])
    summary = (
        f"mean relative error {100 * statistics.mean(errors):.1f}%, max {100 * max(errors):.1f}% over "
        f"{args.test} held-out children; fit: scale {table.scale:.3f}, offset {table.offset:.3f} ms; "
        f"table of {len(table.layers)} layer entries built in {build_s:.0f} s; a prediction takes a median "
        f"{statistics.median(predict_ms):.0f} ms (shape propagation, plus timing of layers not yet "
        f"in the table)"
    )
    out = markdown_table(["arch", "measured ms", "predicted ms", "error %"], rows)
    print(out + "\n" + summary)
    if args.write:
        command = "python benchmarks/latency_lut.py " + " ".join(sys.argv[1:])
        with RESULTS.open("a") as f:
            f.write(
                f"\n## Latency lookup table vs measurement (issue 6)\n\n"
                f"Median latency of extracted children (batch {args.batch}, {args.repeats} repeats, CPU) measured "
                f"whole vs predicted from per-layer timings (`supernet.metrics.LatencyTable`).\n\n"
                f"`{command}` — {machine()}:\n\n{out}\n\n{summary}.\n"
            )
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
