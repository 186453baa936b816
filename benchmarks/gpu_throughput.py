"""Training throughput (images/s) of sandwich steps (max + 2 random + min) through the real
training module, on synthetic data, optionally with bf16 mixed precision and channels-last.

    python benchmarks/gpu_throughput.py --space attentivenas --image-size 224 --batch 128 --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import StepTimer, machine, markdown_table, timing_trainer

from supernet.data import SyntheticDataModule
from supernet.losses import KLDistillation
from supernet.sampling import SandwichSampler
from supernet.space import load_space
from supernet.training import SupernetModule


def throughput(space_name: str, image_size: int, batch: int, steps: int, precision: str, channels_last: bool) -> list:
    space = load_space(space_name)
    dm = SyntheticDataModule(
        num_samples=batch * (steps + 2),
        image_size=image_size,
        num_classes=1000,
        batch_size=batch,
        num_workers=4,
        pin_memory=True,
    )
    module = SupernetModule(
        space, 1000, 3, sampler=SandwichSampler, distill=KLDistillation(), channels_last=channels_last
    )
    timer = StepTimer()
    timing_trainer(steps, [timer], precision=precision).fit(module, datamodule=dm)
    t = statistics.median(timer.times[3:])  # the first steps include cudnn autotuning and allocations
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    return [precision, channels_last, batch, f"{t * 1e3:.1f}", f"{batch / t:.0f}", f"{peak:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="attentivenas")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rows = []
    for precision, cl in [("bf16-mixed", True), ("bf16-mixed", False), ("32-true", False)]:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        rows.append(throughput(args.space, args.image_size, args.batch, args.steps, precision, cl))
    print(
        f"sandwich step throughput, space={args.space}, data {args.image_size}px, 4 children/step; device={machine()}"
    )
    print(markdown_table(["precision", "channels-last", "batch", "ms/step", "images/s", "peak GiB"], rows))


if __name__ == "__main__":
    main()
