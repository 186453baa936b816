"""Cost of one sandwich step relative to its children's separate forward+backward passes.

time ratio   = median over steps of (time of one training step of SupernetModule, Lightning
               loop, optimizer step included) / (sum of the same children's separate
               set_arch + forward + loss + backward times)
memory ratio = memory that training adds with the sandwich rule / with the max child alone
               (on top of the built model and a no-grad forward). CUDA: peak allocated bytes;
               CPU: peak resident memory of a fresh process per configuration, above its resident
               memory just before training. On Linux the process's own peak (VmHWM) is reset to
               its current RSS first (/proc/self/clear_refs): ``ru_maxrss`` would not do, as a
               process started by fork+exec begins with its parent's peak RSS.

    python benchmarks/step_cost.py --space mobilenet_cifar --batch 32 --steps 8
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import StepTimer, machine, markdown_table, timing_trainer

from supernet.data import SyntheticDataModule
from supernet.losses import KLDistillation
from supernet.metrics.latency import median_times
from supernet.ops import resize_to
from supernet.sampling import ArchSampler, Child, SandwichSampler
from supernet.space import load_space
from supernet.training import SupernetModule


class MaxOnlySampler(ArchSampler):
    def children(self, info, candidate_losses=None):
        return [Child(self.space.max(), "teacher", "max")]


def _accelerator(device: str) -> str:
    return "gpu" if device == "cuda" else "cpu"


def make(space_name: str, batch: int, sampler, device: str):
    space = load_space(space_name)
    res = max(space.global_choices["resolution"])
    dm = SyntheticDataModule(num_samples=batch * 64, image_size=res, batch_size=batch)
    module = SupernetModule(space, dm.num_classes, dm.in_chans, sampler=sampler, distill=KLDistillation())
    return space, dm, module


def time_ratio(space_name: str, batch: int, steps: int, device: str) -> list[list[object]]:
    space, dm, module = make(space_name, batch, SandwichSampler, device)
    timer = StepTimer()
    timing_trainer(steps, [timer], accelerator=_accelerator(device)).fit(module, datamodule=dm)
    model = module.supernet.to(device).train()
    x, y = next(iter(dm.train_dataloader()))[:2]
    x, y = x.to(device), y.to(device)
    teacher = torch.randn(batch, dm.num_classes, device=device)

    def separate(child: Child):
        def run():
            model.set_arch(child.arch)
            logits = model(resize_to(x, child.arch.resolution))
            loss = module.step.child_loss(child, logits, y, teacher if child.role == "student" else None, None)
            loss.backward()

        return run

    rows = []
    for step in range(2, steps):  # the first steps include one-off allocations
        sep = sum(median_times([separate(c)], warmup=1, repeats=5)[0] for c in timer.children[step])
        rows.append(timer.times[step] / sep)
    return [["time", f"{statistics.median(rows):.3f}", f"{min(rows):.3f}-{max(rows):.3f}", len(rows)]]


def _status_bytes(field: str) -> int:
    """A memory field (``VmRSS``, ``VmHWM``) of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def _max_rss() -> int:
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def start_peak_rss() -> tuple[int, str]:
    """Start measuring this process's peak RSS now; returns (bytes resident now, how the peak is
    read). Linux: writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current RSS.
    Elsewhere ``ru_maxrss``: the peak since the process started (so this counts what a fresh
    process held before training, and possibly its parent's RSS at fork)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_bytes("VmRSS"), "VmHWM"
    except OSError:
        return _max_rss(), "ru_maxrss"


def peak_memory(mode: str, space_name: str, batch: int, device: str) -> tuple[float, str]:
    """Memory (MiB) that 3 training steps add on top of the built model and a no-grad forward of
    the max child, and how it was read. CUDA: peak allocated bytes; CPU: peak RSS of this (fresh)
    process during training above its RSS before (``start_peak_rss``)."""
    sampler = {"sandwich": SandwichSampler, "max": MaxOnlySampler}[mode]
    space, dm, module = make(space_name, batch, sampler, device)
    dm.setup()
    module.supernet.to(device)
    with torch.no_grad():
        module.supernet(next(iter(dm.train_dataloader()))[0].to(device))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before, how = torch.cuda.memory_allocated(), "max_memory_allocated"
    else:
        before, how = start_peak_rss()
    timing_trainer(3, accelerator=_accelerator(device)).fit(module, datamodule=dm)
    if device == "cuda":
        after = torch.cuda.max_memory_allocated()
    else:
        after = _status_bytes("VmHWM") if how == "VmHWM" else _max_rss()
    return (after - before) / 2**20, how


def memory_ratio(space_name: str, batch: int, device: str) -> list[list[object]]:
    added = {}
    for mode in ("max", "sandwich"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--space",
                space_name,
                "--batch",
                str(batch),
                "--device",
                device,
                "--memory-mode",
                mode,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        added[mode], how = result["added_mib"], result["measured_by"]
    if added["max"] <= 0:  # ru_maxrss: a peak set before training (imports, model build): nothing to compare
        detail = f"training did not raise the peak ({how}) at this size; use a larger --batch"
        return [["peak memory", "n/a", detail, 3]]
    return [
        [
            "peak memory",
            f"{added['sandwich'] / added['max']:.3f}",
            f"training adds {added['sandwich']:.0f} MiB (sandwich) vs {added['max']:.0f} MiB (max child alone); "
            f"peak read from {how}",
            3,
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="mobilenet_cifar")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-memory", action="store_true", help="measure the time ratio only")
    parser.add_argument("--memory-mode", choices=["max", "sandwich"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_mode:
        added, how = peak_memory(args.memory_mode, args.space, args.batch, args.device)
        print(json.dumps({"added_mib": added, "measured_by": how}))
        return
    rows = time_ratio(args.space, args.batch, args.steps, args.device)
    if not args.skip_memory:
        rows += memory_ratio(args.space, args.batch, args.device)
    print(f"sandwich step cost, space={args.space}, batch={args.batch}, device={machine()}")
    print(markdown_table(["measure", "ratio (median)", "range / detail", "n"], rows))


if __name__ == "__main__":
    main()
