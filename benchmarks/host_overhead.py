"""Host overhead of a sandwich step: the supernet vs the same children as static modules.

At a tiny batch the arithmetic is negligible and the host (Python, one dispatch per aten operator)
bounds the step, as it does on a GPU. For each space: one sandwich step (max, min and two random
children, distillation, the gradient sync and finiteness check) through ``SandwichStep`` on the
supernet, and on ``StaticChildren`` (the same children extracted as plain modules, driven by the
same step): the aten operators dispatched per step, after a first step
(``count_dispatched_ops``), and the median ms/step (interleaved, ``median_times``). Models are
built without dropout and drop-path (the extracted children have none).

    python benchmarks/host_overhead.py --spaces tiny mobilenet_cifar vit_tiny --repeats 20

On a GPU (``--device cuda``) the times are taken on ``torch.utils.benchmark``'s clock, which
waits for the queued kernels, so they compare whole steps at the batch given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table

from supernet.metrics.dispatch import count_dispatched_ops, sandwich_vs_static
from supernet.metrics.latency import median_times


def measure(space_name: str, batch: int, resolution: int | None, repeats: int, device: str) -> list[object]:
    steps, size = sandwich_vs_static(space_name, batch, resolution, device)
    ops = {label: sum(count_dispatched_ops(run).values()) for label, run in steps.items()}
    t_super, t_static = median_times([steps["supernet"], steps["static"]], warmup=3, repeats=repeats)
    return [
        space_name,
        f"{batch}x{size}px",
        ops["supernet"],
        ops["static"],
        f"{ops['supernet'] / ops['static']:.3f}",
        f"{t_super * 1e3:.1f}",
        f"{t_static * 1e3:.1f}",
        f"{t_super / t_static:.3f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=["tiny", "mobilenet_cifar", "resnet_cifar", "vit_tiny"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=None, help="input size (default: the largest child's)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu", help="where the step runs: cpu (default) or cuda")
    args = parser.parse_args()
    rows = [measure(name, args.batch, args.resolution, args.repeats, args.device) for name in args.spaces]
    print(f"device: {machine()}")
    header = ["space", "input", "aten ops supernet", "static", "ratio", "ms/step supernet", "static", "ratio"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
