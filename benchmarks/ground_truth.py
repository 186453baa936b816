"""Stand-alone ground truth for the ranking benchmark, resumable, with its test-retest ceiling.

Picks ``--archs`` children of ``--space`` spread evenly over its multiply-add range, trains each
alone with the supernet's max-child recipe (``sampler=fixed``: label-smoothed CE, dropout and
drop-path on) for every seed of ``--seeds``, and scores it on the validation split after BN
recalibration. Every finished (arch, seed) is written at once to ``benchmarks/results/
ground_truth_<task>.json`` with the recipe, so the work can be done in parts: a rerun continues
where the last one stopped (and refuses a cache made with another recipe unless ``--fresh``).

Prints the spread (smallest and largest child), and the test-retest Kendall tau-b between every
pair of seeds over the children measured by both: the ceiling that no supernet can beat. With four
seeds or more, also the tau between the seed-means of two disjoint halves of the seeds: the
test-retest of a ground truth that averages seeds.

    python benchmarks/ground_truth.py --archs 24 --seeds 0 1 2 --epochs 8
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import children_override, composed_config, machine, markdown_table
from common import run_training as run
from omegaconf import OmegaConf

from supernet.metrics import complexity
from supernet.metrics.ranking import kendall_tau
from supernet.space import load_space

RESULTS = Path(__file__).resolve().parent / "results"


def spread_archs(space_name: str, n: int, seed: int = 0) -> list[str]:
    """``n`` children evenly spread over the multiply-add range of a large uniform sample."""
    space = load_space(space_name)
    gen = random.Random(seed)
    pool = {space.sample(gen) for _ in range(4000)} | {space.min(), space.max()}
    ranked = sorted(pool, key=lambda a: (complexity(space, a, in_chans=1, num_classes=10).macs, str(a)))
    return [str(ranked[round(i * (len(ranked) - 1) / (n - 1))]) for i in range(n)]


def save_json(path: Path, cache: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1) + "\n")
    os.replace(tmp, path)  # a killed run leaves the previous cache whole


def data_config(overrides: list[str]) -> dict:
    """The data set the overrides compose (its generator's settings): a cache made on other data
    must not be mixed in."""
    data = OmegaConf.to_container(composed_config(overrides).data, resolve=True)
    return {k: v for k, v in data.items() if k not in ("seed", "num_workers")}


def ground_truth(
    task: str, space: str, archs: list[str], seeds: list[int], epochs: int, fresh: bool, path: Path
) -> dict:
    recipe = [f"experiment={task}", f"space={space}", f"trainer.max_epochs={epochs}", "sampler=fixed", "distill=none"]
    data = data_config(recipe)
    cache = json.loads(path.read_text()) if path.exists() else None
    if cache is not None and (cache["recipe"], cache["data"]) != (recipe, data) and not fresh:
        raise SystemExit(
            f"{path} was made with recipe {cache['recipe']} and data {cache['data']}, not {recipe} and {data}: "
            "pass --fresh to start over"
        )
    if cache is None or fresh:
        cache = {"recipe": recipe, "data": data, "note": "stand-alone, val split, BN recalibrated", "runs": {}}
    # children in a shuffled order, so that a part of the work already spans the range
    order = sorted(archs, key=lambda a: random.Random(a).random())
    todo = [(a, s) for a in order for s in seeds if str(s) not in cache["runs"].get(a, {})]
    for i, (arch, seed) in enumerate(todo):
        start = time.time()
        result = run(
            [
                *recipe,
                f"seed={seed}",
                f"sampler.arch='{arch}'",
                f"trainer.check_val_every_n_epoch={epochs}",
                children_override([arch]),
            ]
        )
        row = result["rows"][0]
        cache["runs"].setdefault(arch, {})[str(seed)] = {
            "val_acc": row["val_acc"],
            "val_loss": row["val_loss"],
            "mmacs": row["mmacs"],
        }
        save_json(path, cache)
        print(
            f"  {i + 1}/{len(todo)} {arch} seed {seed}: val acc {row['val_acc']:.4f} ({time.time() - start:.0f} s)",
            flush=True,
        )
    return cache


def truth_table(cache: dict) -> tuple[dict[str, float], list[str]]:
    """Seed-mean val accuracy of the children measured with every seed, and those children in
    multiply-add order."""
    runs = cache["runs"]
    seeds = sorted({s for r in runs.values() for s in r})
    done = sorted((a for a in runs if all(s in runs[a] for s in seeds)), key=lambda a: (runs[a][seeds[0]]["mmacs"], a))
    return {a: statistics.mean(runs[a][s]["val_acc"] for s in seeds) for a in done}, done


def test_retest(cache: dict) -> str:
    """Kendall tau-b between every pair of seeds over the children measured by both; with four
    seeds or more also between the seed-means of the two halves of every even split of the seeds
    (over the children measured by every seed): the test-retest of a ground truth that averages
    that many seeds, as the ranking benchmark's does."""
    runs = cache["runs"]
    seeds = sorted({s for r in runs.values() for s in r}, key=int)
    rows, pairs = [], []
    for a, b in itertools.combinations(seeds, 2):
        both = [x for x in runs if a in runs[x] and b in runs[x]]
        if len(both) >= 3:
            tau = kendall_tau([runs[x][a]["val_acc"] for x in both], [runs[x][b]["val_acc"] for x in both])
            rows.append([f"seed {a} vs seed {b}", len(both), f"{tau:.3f}"])
            pairs.append(tau)
    if not rows:
        return ""
    table = markdown_table(["test-retest (val acc)", "children", "Kendall tau-b"], rows)
    every = [x for x in runs if all(s in runs[x] for s in seeds)]
    half = len(seeds) // 2
    summary = [["one seed vs another", len(pairs), *_spread(pairs)]]
    if half >= 2 and len(every) >= 3:
        splits = []
        # each split once: the half holding the first seed against the rest
        for first in itertools.combinations(seeds[1:], half - 1):
            one = [seeds[0], *first]
            other = [s for s in seeds if s not in one][:half]
            means = [[statistics.mean(runs[x][s]["val_acc"] for s in group) for x in every] for group in (one, other)]
            splits.append(kendall_tau(*means))
        summary.append([f"mean of {half} seeds vs mean of the other {half}", len(splits), *_spread(splits)])
    header = ["test-retest summary", "comparisons", "mean tau", "min", "max"]
    return table + "\n\n" + markdown_table(header, summary)


def _spread(values: list[float]) -> list[str]:
    return [f"{statistics.mean(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}"]


def report(cache: dict) -> str:
    truth, done = truth_table(cache)
    lines = []
    if done:
        lines.append(
            f"children measured with every seed: {len(done)}; seed-mean val acc: smallest child "
            f"{truth[done[0]]:.4f}, largest {truth[done[-1]]:.4f}, range {min(truth.values()):.4f}-"
            f"{max(truth.values()):.4f}"
        )
    lines.append(test_retest(cache))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cluttered", help="the experiment= whose data and recipe are used")
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--archs", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--fresh", action="store_true", help="discard a cache made with another recipe")
    parser.add_argument(
        "--cache",
        type=Path,
        help="where the results are kept (default benchmarks/results/ground_truth_<task>.json, the one "
        "ranking.py reads): another path tries another recipe without touching that one",
    )
    args = parser.parse_args()
    archs = spread_archs(args.space, args.archs)
    path = args.cache or RESULTS / f"ground_truth_{args.task}.json"
    cache = ground_truth(args.task, args.space, archs, args.seeds, args.epochs, args.fresh, path)
    print(f"ground truth, task={args.task}, space={args.space}, {args.epochs} epochs; device={machine()}")
    print(report(cache))


if __name__ == "__main__":
    main()
