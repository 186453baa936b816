"""What PA&DA's data half buys: sandwich training with three data samplers, paired by seed.

Arms (uniform paths, ``--task``'s recipe): ``data_sampler=uniform``; ``pada`` with
``reweight=true`` (unbiased: each sample weighted by 1/(N p_i)); ``pada`` as the paper (no
weights, a biased resampling). After every epoch: the loss of the max, mid and min children over
the whole training set and the validation split (each BN-recalibrated, eval mode), and the
effective sample size 1 / sum(p^2) of the distribution the epoch drew its data from (N for
uniform sampling). Results go to ``benchmarks/results/data_half_<task>.json`` as each run
finishes (a rerun continues; ``--report`` only prints).

The table: each PA&DA arm minus the uniform arm, paired by seed, at the last epoch, with a 95%
t-interval over the seeds (scipy); and the max child's training-set loss and ESS epoch by epoch.

    python benchmarks/data_half.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, train_with_snapshots
from ground_truth import RESULTS, save_json

from supernet.models.calibration import calibrate_bn, load_bn_state
from supernet.ops import resize_to

ARMS = {
    "uniform": ["data_sampler=uniform"],
    "pada reweight": ["data_sampler=pada", "data_sampler.reweight=true"],
    "pada (paper)": ["data_sampler=pada"],
}
CHILDREN = ("max", "mid", "min")


@torch.no_grad()
def split_loss(model, arch, loader) -> float:
    model.eval()
    model.set_arch(arch)
    total, count = 0.0, 0
    for x, y, *_ in loader:
        logits = model(resize_to(x, arch.resolution))
        total += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        count += len(y)
    return total / count


def evaluate(after: list, datamodule, calib_batches: int = 8) -> dict:
    """Per epoch: each child's train/val loss, and the ESS of the data distribution of that epoch."""
    n = len(datamodule.train_set)
    out = {"ess": [float(n)], **{f"{c}_{s}": [] for c in CHILDREN for s in ("train", "val")}}
    train_loader = torch.utils.data.DataLoader(datamodule.train_set, batch_size=512)
    for loaded in after:
        space = loaded.model.space
        for child in CHILDREN:
            arch = space.resolve(child)
            load_bn_state(
                loaded.model, calibrate_bn(loaded.model, datamodule.calibration_dataloader(), calib_batches, arch)
            )
            out[f"{child}_train"].append(split_loss(loaded.model, arch, train_loader))
            out[f"{child}_val"].append(split_loss(loaded.model, arch, datamodule.val_dataloader()))
        probs = loaded.meta.get("data_sampler", {}).get("probs")
        out["ess"].append(float(1.0 / probs.double().square().sum()) if probs is not None else float(n))
    out["ess"] = out["ess"][: len(after)]  # the distribution each trained epoch drew from
    return out


def train_arms(task: str, arms: list[str], seeds: list[int], epochs: int) -> dict:
    path = RESULTS / f"data_half_{task}.json"
    cache = json.loads(path.read_text()) if path.exists() else {"epochs": epochs, "runs": {}}
    if cache["epochs"] != epochs:
        raise SystemExit(f"{path} was made with {cache['epochs']} epochs: move it away to start over")
    for seed in seeds:
        for arm in arms:
            if str(seed) in cache["runs"].get(arm, {}):
                continue
            start = time.time()
            after, _, datamodule = train_with_snapshots([f"experiment={task}", *ARMS[arm], f"seed={seed}"], epochs)
            cache["runs"].setdefault(arm, {})[str(seed)] = evaluate(after, datamodule)
            save_json(path, cache)
            print(f"  {arm} seed {seed}: done ({time.time() - start:.0f} s)", flush=True)
    return cache


def interval(diffs: list[float]) -> tuple[float, float, float]:
    mean = statistics.mean(diffs)
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def report(cache: dict, seeds: list[int]) -> str:
    runs = cache["runs"]
    arms = [a for a in ARMS if all(str(s) in runs.get(a, {}) for s in seeds)]
    out = []
    if "uniform" in arms and len(seeds) > 1:
        rows = []
        for arm in arms[1:]:
            for key in [f"{c}_{s}" for s in ("train", "val") for c in CHILDREN]:
                diffs = [runs[arm][str(s)][key][-1] - runs["uniform"][str(s)][key][-1] for s in seeds]
                mean, low, high = interval(diffs)
                verdict = "lower" if high < 0 else "higher" if low > 0 else "not resolved"
                rows.append(
                    [
                        f"{arm} − uniform",
                        key.replace("_", " ") + " loss",
                        f"{mean:+.4f}",
                        f"[{low:+.4f}, {high:+.4f}]",
                        verdict,
                    ]
                )
        out.append(
            markdown_table(["paired by seed, last epoch", "measure", "difference", "95% t-interval", "verdict"], rows)
        )
    epochs = cache["epochs"]
    for key, label in (("max_train", "max child's training-set loss"), ("ess", "ESS / N of the epoch's data")):
        rows = []
        for arm in arms:
            vals = [[runs[arm][str(s)][key][e] for s in seeds] for e in range(epochs)]
            if key == "ess":
                n = runs[arm][str(seeds[0])]["ess"][0]
                vals = [[v / n for v in row] for row in vals]
            rows.append([arm, *(f"{statistics.mean(v):.3f}" for v in vals)])
        out.append(markdown_table([f"{label} (seed mean)", *(f"epoch {e}" for e in range(epochs))], rows))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cluttered", help="the experiment= whose data and recipe are used")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--report", action="store_true", help="only print the report of what is cached")
    args = parser.parse_args()
    if args.report:
        cache = json.loads((RESULTS / f"data_half_{args.task}.json").read_text())
    else:
        cache = train_arms(args.task, args.arms, args.seeds, args.epochs)
    print(
        f"data half on {args.task}, sandwich uniform paths, seeds {args.seeds}, {cache['epochs']} epochs; "
        f"device={machine()}"
    )
    print(report(cache, args.seeds))


if __name__ == "__main__":
    main()
