"""Cost of running a child through the supernet's elastic layers vs its extracted plain module.

Ratio = median(forward+backward time of the supernet with the arch set)
      / median(forward+backward time of the extracted child), train mode, same input.

    python benchmarks/elastic_overhead.py --space mobilenet_cifar --batch 32
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table

from supernet.metrics.latency import median_times
from supernet.models import build
from supernet.space import load_space


def middle_arch(space):
    """The sampled arch whose multiply-adds are closest to halfway between min and max."""
    from supernet.metrics import complexity

    lo, hi = complexity(space, space.min()).macs, complexity(space, space.max()).macs
    gen = random.Random(0)
    return min((space.sample(gen) for _ in range(200)), key=lambda a: abs(complexity(space, a).macs - (lo + hi) / 2))


def fwd_bwd(module, x):
    def step():
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()

    return step


def run(
    space_name: str,
    batch: int,
    repeats: int,
    device: str,
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
    in_chans: int = 3,
) -> list[list[object]]:
    space = load_space(space_name)
    model = build(space, 10, in_chans).to(device).train()
    rows = []
    for label, arch in [("min", space.min()), ("mid", middle_arch(space)), ("max", space.max())]:
        model.set_arch(arch)
        child = model.extract().to(device).train()
        x = torch.randn(batch, in_chans, arch.resolution, arch.resolution, device=device)
        if channels_last:
            model, child = model.to(memory_format=torch.channels_last), child.to(memory_format=torch.channels_last)
            x = x.to(memory_format=torch.channels_last)
        ctx = (
            torch.autocast(device_type=device.split(":")[0], dtype=dtype)
            if dtype
            else torch.autocast("cpu", enabled=False)
        )
        with ctx:
            t_super, t_child = median_times([fwd_bwd(model, x), fwd_bwd(child, x)], warmup=3, repeats=repeats)
        rows.append(
            [
                label,
                str(arch),
                f"{model.complexity().mmacs:.1f}",
                f"{t_super * 1e3:.2f}",
                f"{t_child * 1e3:.2f}",
                f"{t_super / t_child:.3f}",
            ]
        )
    return rows


HEADER = ["child", "arch", "MMACs", "supernet ms", "extracted ms", "ratio"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="mobilenet_cifar")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    rows = run(args.space, args.batch, args.repeats, args.device)
    print(f"elastic overhead, space={args.space}, batch={args.batch}, device={machine()}")
    print(markdown_table(HEADER, rows))


if __name__ == "__main__":
    main()
