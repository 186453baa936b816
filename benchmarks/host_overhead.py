"""Host overhead of a sandwich step: the supernet vs the same children as static modules.

At a tiny batch the arithmetic is negligible and the host (Python, one dispatch per aten operator)
bounds the step, as it does on a GPU. For each space: one sandwich step (max, min and two random
children, distillation, the gradient sync and finiteness check) through ``SandwichStep`` on the
supernet, and on ``StaticChildren`` (the same children extracted as plain modules, driven by the
same step): the aten operators dispatched per step, after a first step
(``count_dispatched_ops``), and the median ms/step (interleaved, ``median_times``). Models are
built without dropout and drop-path (the extracted children have none).

    python benchmarks/host_overhead.py --spaces tiny mobilenet_cifar vit_tiny --repeats 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table

from supernet.losses import KLDistillation, LabelSmoothingCE
from supernet.metrics.dispatch import StaticChildren, count_dispatched_ops
from supernet.metrics.latency import median_times
from supernet.models import build
from supernet.sampling import SandwichSampler, StepInfo
from supernet.space import load_space
from supernet.training import SandwichStep


def measure(space_name: str, batch: int, resolution: int | None, repeats: int) -> list[object]:
    torch.manual_seed(0)
    space = load_space(space_name)
    in_chans = 1 if space_name == "tiny" else 3
    model = build(space, num_classes=10, in_chans=in_chans, dropout=0.0, drop_path=0.0).train()
    children = SandwichSampler(space, seed=0, num_random=2).children(StepInfo(3))
    size = resolution or max(child.arch.resolution for child in children)
    x, y = torch.randn(batch, in_chans, size, size), torch.randint(0, 10, (batch,))
    steps = {}
    for label, module in (("supernet", model), ("static", StaticChildren(model, [c.arch for c in children]))):
        step = SandwichStep(module, LabelSmoothingCE(0.1), KLDistillation())
        steps[label] = lambda step=step: step(x, y, children)
    for run in steps.values():
        run()  # the first step cuts the supernet's windows (once per child shape in a run)
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
    args = parser.parse_args()
    rows = [measure(name, args.batch, args.resolution, args.repeats) for name in args.spaces]
    print(f"device: {machine()}")
    header = ["space", "input", "aten ops supernet", "static", "ratio", "ms/step supernet", "static", "ratio"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
