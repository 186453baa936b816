"""Time cost of PA&DA: training steps with PA&DA path + data importance sampling vs the same
steps without its measurements (same model, same children: the baseline draws from the PA&DA
path distribution too, which stays uniform within the measured steps, but attaches no gradient
hooks and reads the data in uniform order). Median step time; runs alternate A, B, A, B so that
drifts of the machine hit both.

    python benchmarks/pada_overhead.py --space mobilenet_cifar --batch 32 --steps 12 --rounds 2
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
from supernet.sampling import PadaDataSampler, PadaPathSampler
from supernet.space import load_space
from supernet.training import SupernetModule


class UnmeasuredPadaSampler(PadaPathSampler):
    """Draws like PA&DA, measures nothing."""

    measures_gradients = False


def step_times(space_name: str, batch: int, steps: int, pada: bool) -> tuple[list[float], list[list[str]]]:
    space = load_space(space_name)
    res = max(space.global_choices["resolution"])
    dm = SyntheticDataModule(num_samples=batch * steps, image_size=res, batch_size=batch)
    dm.setup()
    data_sampler = PadaDataSampler(len(dm.train_set)) if pada else None
    dm.train_sampler = data_sampler
    module = SupernetModule(
        space,
        dm.num_classes,
        dm.in_chans,
        sampler=PadaPathSampler if pada else UnmeasuredPadaSampler,
        data_sampler=data_sampler,
        distill=KLDistillation(),
    )
    timer = StepTimer()
    timing_trainer(steps, [timer]).fit(module, datamodule=dm)
    return timer.times[2:], [[str(c.arch) for c in step] for step in timer.children]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="mobilenet_cifar")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    times = {False: [], True: []}
    for _ in range(args.rounds):
        children = {}
        for pada in (False, True):
            step, children[pada] = step_times(args.space, args.batch, args.steps, pada)
            times[pada] += step
        if children[False] != children[True]:  # the comparison is only fair on the same children
            raise SystemExit("the two runs trained different children; the timings are not comparable")
    base, pada = statistics.median(times[False]), statistics.median(times[True])
    print(f"PA&DA overhead, space={args.space}, batch={args.batch}, {len(times[True])} steps each; device={machine()}")
    print(
        markdown_table(
            ["training", "median ms/step", "ratio"],
            [
                ["same children, no PA&DA measurements", f"{base * 1e3:.1f}", "1.000"],
                ["sandwich + PA&DA paths + PA&DA data", f"{pada * 1e3:.1f}", f"{pada / base:.3f}"],
            ],
        )
    )


if __name__ == "__main__":
    main()
