"""Training throughput (images/s) of sandwich steps (max + 2 random + min) through the real
training module, on synthetic data, in fp32, bf16 mixed precision, and bf16 with channels-last,
at each batch size given.

On a GPU it also profiles a few steps after the timed ones (``torch.profiler``) and reports the
GPU-busy fraction: the device time of the kernels and copies of one profiled step over the median
time of an unprofiled step (kernels on concurrent streams would count twice; the step uses one).

    python benchmarks/gpu_throughput.py --space attentivenas --image-size 224 --batch 64 128 --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.autograd import DeviceType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import StepTimer, machine, markdown_table, timing_trainer

from supernet.data import SyntheticDataModule
from supernet.losses import KLDistillation
from supernet.sampling import SandwichSampler
from supernet.space import load_space
from supernet.training import SupernetModule

HEADER = ["precision", "channels-last", "batch", "ms/step", "images/s", "peak GiB", "GPU busy"]


class DeviceTimeProfiler(pl.Callback):
    """Profiles the training steps from ``start`` to the end of training and sums the device time
    of what ran on the GPU in them (``None`` where no GPU is used)."""

    def __init__(self, start: int):
        self.start, self.device_seconds = start, None
        self._profiler: torch.profiler.profile | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.start and torch.cuda.is_available():
            activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
            self._profiler = torch.profiler.profile(activities=activities)
            self._profiler.__enter__()

    def on_train_end(self, trainer, pl_module):
        if self._profiler is not None:
            torch.cuda.synchronize()
            self._profiler.__exit__(None, None, None)
            # the kernels and copies themselves, as the profiler's own table totals them: the CPU
            # ops that launched them and annotations spanning them would count them again
            on_device = [
                event
                for event in self._profiler.events()
                if event.device_type == DeviceType.CUDA and not event.is_user_annotation
            ]
            self.device_seconds = sum(event.self_device_time_total for event in on_device) / 1e6


def throughput(
    space_name: str, image_size: int, batch: int, steps: int, profiled: int, precision: str, channels_last: bool
) -> list:
    space = load_space(space_name)
    dm = SyntheticDataModule(
        num_samples=batch * (steps + profiled + 2),
        image_size=image_size,
        num_classes=1000,
        batch_size=batch,
        num_workers=4,
        pin_memory=True,
    )
    module = SupernetModule(
        space, 1000, 3, sampler=SandwichSampler, distill=KLDistillation(), channels_last=channels_last
    )
    timer, profiler = StepTimer(), DeviceTimeProfiler(start=steps)
    timing_trainer(steps + profiled, [timer, profiler], precision=precision).fit(module, datamodule=dm)
    t = statistics.median(timer.times[3:steps])  # the first steps include cudnn autotuning and allocations
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    busy = "n/a" if profiler.device_seconds is None else f"{profiler.device_seconds / profiled / t:.2f}"
    return [precision, channels_last, batch, f"{t * 1e3:.1f}", f"{batch / t:.0f}", f"{peak:.1f}", busy]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="attentivenas")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per setting (the first 3 not counted)")
    parser.add_argument("--profiled", type=int, default=3, help="steps profiled after the timed ones, on a GPU")
    args = parser.parse_args()
    if args.steps < 4:
        parser.error(f"--steps must be at least 4 (the first 3 are warm-up), got {args.steps}")
    rows = []
    for batch in args.batch:
        for precision, cl in [("32-true", False), ("bf16-mixed", False), ("bf16-mixed", True)]:
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            rows.append(throughput(args.space, args.image_size, batch, args.steps, args.profiled, precision, cl))
            print(markdown_table(HEADER, rows[-1:]).splitlines()[-1], flush=True)  # progress, a row at a time
    print(
        f"sandwich step throughput, space={args.space}, data {args.image_size}px, 4 children/step; device={machine()}"
    )
    print(markdown_table(HEADER, rows))


if __name__ == "__main__":
    main()
