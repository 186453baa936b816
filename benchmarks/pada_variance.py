"""The mechanism of PA&DA: does its sampling reduce the variance of the training gradient?

Trains one supernet (``--experiment``, PA&DA paths and data by default: the paper's SPOS setting)
keeping a checkpoint after every epoch, then, at the start of each epoch of ``--at`` (the weights
after the epoch before, and the distributions that epoch trained with), measures with
``supernet.metrics.gradient_variance.pada_variance`` the variance of the sampled gradient under
each distribution relative to uniform sampling, absolute (unbiased by ``1/(N p)`` weights, not
each divided by its own mean), with bootstrap 95% intervals: for paths the distribution training
used, every importance rule fitted at these weights, and the whole-child oracle; for data the
distribution training used, the logit proxy at these weights, and the oracle ``p ∝ ||g_i||``.
Results go to ``benchmarks/results/pada_variance_<experiment>_seed<seed>.json``.

    python benchmarks/pada_variance.py --experiment spos_pada_cluttered --at 3 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, train_with_snapshots
from ground_truth import RESULTS, save_json

from supernet.losses import LabelSmoothingCE
from supernet.metrics.gradient_variance import pada_variance


def cell(r: tuple[float, float, float]) -> str:
    ratio, low, high = r
    return f"{ratio:.3f} [{low:.3f}, {high:.3f}]"


def measure(experiment: str, seed: int, epochs: int, at: list[int], overrides: list[str]) -> dict:
    config = [f"experiment={experiment}", f"seed={seed}", *overrides]
    after, cfg, data = train_with_snapshots(config, epochs)
    x = torch.stack([data.train_set[i][0] for i in range(len(data.train_set))])
    y = torch.tensor([int(data.train_set[i][1]) for i in range(len(data.train_set))])
    criterion = LabelSmoothingCE(cfg.model.label_smoothing)
    results = {"config": [*config, f"trainer.max_epochs={epochs}"], "at": {}}
    for epoch in at:
        loaded = after[epoch - 1]  # the weights at the start of ``epoch``, and the distributions it used
        torch.manual_seed(seed)
        r = pada_variance(
            loaded.model,
            criterion,
            x,
            y,
            loaded.meta["sampler"].get("probs"),
            loaded.meta.get("data_sampler", {}).get("probs"),
            seed=seed,
        )
        results["at"][str(epoch)] = r
        print(f"  start of epoch {epoch}: {r}", flush=True)
    return results


def tables(results: dict) -> str:
    out = []
    for half in ("paths", "data"):
        names = list(next(iter(results["at"].values()))[half])
        rows = [[f"start of epoch {e}", *(cell(r[half][n]) for n in names)] for e, r in results["at"].items()]
        out.append(markdown_table([f"{half}: variance / uniform's", *names], rows))
    rows = [[f"start of epoch {e}", f"{r['proxy_spearman']:.3f}"] for e, r in results["at"].items()]
    out.append(markdown_table(["data proxy vs ||g_i||", "Spearman"], rows))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="spos_pada_cluttered")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--at", type=int, nargs="+", default=[3, 7], help="epochs (0-based, >= 1) to measure at")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides of the training run")
    args = parser.parse_args()
    if not all(1 <= e < args.epochs for e in args.at):
        raise SystemExit(f"--at must name epochs between 1 and {args.epochs - 1}")
    results = measure(args.experiment, args.seed, args.epochs, args.at, args.overrides)
    results["command"] = " ".join(["python benchmarks/pada_variance.py", *sys.argv[1:]])
    save_json(RESULTS / f"pada_variance_{args.experiment}_seed{args.seed}.json", results)
    print(f"{args.experiment}, seed {args.seed}, {args.epochs} epochs; device={machine()}")
    print(tables(results))


if __name__ == "__main__":
    main()
