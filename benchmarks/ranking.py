"""Ranking benchmark: how well seven ways of training the supernet rank its children, paired by seed.

Arms (all on ``--task``'s data and recipe, for the same epochs, ``--epochs``, default the
recipe's, so the same optimizer steps): SPOS uniform, SPOS + PA&DA (paths and data, the paper's
setting), sandwich uniform, sandwich + PA&DA (paths and data), sandwich + attentive best-up,
Once-for-All's progressive shrinking (``experiment=ofa_ps_<task>``), few-shot gradient matching
(``fewshot=gradient_matching``: the sandwich uniform recipe split into sub-supernets after a
one-shot warm-up; the split each seed made is cached and printed). Every (arm, seed) trains one
supernet and scores the ground truth's children on the validation split, each after BN
recalibration; results are written to ``benchmarks/results/ranking_<task>.json`` as each run
finishes, so the work can be done in parts (a rerun continues; ``--report`` only prints).

Against the seed-mean stand-alone accuracy of ``benchmarks/ground_truth.py`` (run it first;
``--truth`` picks another of its caches, e.g. one trained for more epochs): Kendall tau-b,
Spearman rho and precision at the top 25% per arm (mean over seeds); the supernet's accuracy of
the smallest, the middle and the largest child beside their stand-alone accuracy; and each arm
minus the uniform arm of its family (progressive shrinking and few-shot: minus sandwich uniform),
and each arm minus the ranking by multiply-adds alone, paired by seed, with a bootstrap 95%
interval that resamples seeds and children together. Beside them the ceiling: the ground truth's
own test-retest tau.

    python benchmarks/ranking.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import children_override, composed_config, machine, markdown_table
from common import run_training as run
from ground_truth import RESULTS, save_json, test_retest, truth_table

from supernet.metrics.ranking import ranking_report

ARMS = {
    "SPOS uniform": ["experiment=spos_{task}"],
    "SPOS + PA&DA": ["experiment=spos_pada_{task}"],
    "sandwich uniform": ["experiment={task}"],
    "sandwich + PA&DA": ["experiment={task}", "sampler=sandwich_pada", "data_sampler=pada"],
    "sandwich + attentive": ["experiment={task}", "sampler=attentive"],
    "progressive shrinking": ["experiment=ofa_ps_{task}"],
    "few-shot GM": ["experiment={task}", "fewshot=gradient_matching"],
}
BASELINE = {"SPOS + PA&DA": "SPOS uniform", "sandwich + PA&DA": "sandwich uniform"}
BASELINE["sandwich + attentive"] = "sandwich uniform"
BASELINE["progressive shrinking"] = "sandwich uniform"
BASELINE["few-shot GM"] = "sandwich uniform"
METRICS = {"Kendall tau": "kendall_tau", "Spearman rho": "spearman_rho", "precision@25%": "precision_at_top25pct"}


def train_arms(task: str, arms: list[str], seeds: list[int], archs: list[str], epochs: int) -> dict:
    path = RESULTS / f"ranking_{task}.json"
    cache = json.loads(path.read_text()) if path.exists() else {"archs": archs, "epochs": epochs, "runs": {}}
    if cache["archs"] != archs or cache["epochs"] != epochs:
        raise SystemExit(f"{path} was made for other children or epochs: move it away to start over")
    for seed in seeds:  # seed-major, so that a part of the work already pairs the arms
        for arm in arms:
            if str(seed) in cache["runs"].get(arm, {}):
                continue
            start = time.time()
            result = run(
                [
                    *(o.format(task=task) for o in ARMS[arm]),
                    f"trainer.max_epochs={epochs}",
                    f"seed={seed}",
                    f"trainer.check_val_every_n_epoch={epochs}",
                    children_override(archs),
                ]
            )
            rows = result["rows"]
            run_record = {"val_acc": [r["val_acc"] for r in rows], "val_loss": [r["val_loss"] for r in rows]}
            if result["module"].fewshot is not None:
                run_record["fewshot_splits"] = result["module"].supernet.state()["splits"]
            cache["runs"].setdefault(arm, {})[str(seed)] = run_record
            save_json(path, cache)
            print(f"  {arm} seed {seed}: done ({time.time() - start:.0f} s)", flush=True)
    return cache


def _metric(scores: np.ndarray, truth: np.ndarray, key: str) -> float:
    return ranking_report(scores, truth)[key]


def paired_interval(
    arm: np.ndarray, base: np.ndarray, truth: np.ndarray, key: str, draws: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds of metric(arm) - metric(base), and a 95% bootstrap interval.

    ``arm``/``base``: (seeds, children) scores of the same seeds. Each draw resamples the seeds
    and the children with replacement (the same for both arms: paired). scipy's ``bootstrap``
    resamples along one axis only; both sources of noise are resampled here."""
    gen = np.random.default_rng(seed)
    n_seeds, n = arm.shape
    diff = float(np.mean([_metric(arm[s], truth, key) - _metric(base[s], truth, key) for s in range(n_seeds)]))
    boot = []
    for _ in range(draws):
        seeds, kids = gen.integers(0, n_seeds, n_seeds), gen.integers(0, n, n)
        if len(set(truth[kids])) < 3:
            continue
        boot.append(
            np.mean([_metric(arm[s, kids], truth[kids], key) - _metric(base[s, kids], truth[kids], key) for s in seeds])
        )
    low, high = np.percentile(boot, [2.5, 97.5])
    return diff, float(low), float(high)


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "not resolved"


def report(cache: dict, truth: dict[str, float], macs: np.ndarray, seeds: list[int], draws: int) -> str:
    """``macs``: the children's multiply-adds (in ``cache["archs"]`` order), the baseline every arm
    is also compared with: a ranking by size alone costs no training."""
    archs = cache["archs"]
    t = np.array([truth[a] for a in archs])
    arms = [a for a in ARMS if all(str(s) in cache["runs"].get(a, {}) for s in seeds)]
    scores = {a: np.array([cache["runs"][a][str(s)]["val_acc"] for s in seeds]) for a in arms}
    rows = []
    for arm in arms:
        cells = []
        for key in METRICS.values():
            vals = [_metric(scores[arm][i], t, key) for i in range(len(seeds))]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}")
        rows.append([arm, *cells])
    out = [markdown_table(["arm (mean ± sd over seeds)", *METRICS], rows), ""]
    corners = {"smallest": 0, "middle": len(archs) // 2, "largest": len(archs) - 1}  # children by multiply-adds
    rows = [["stand-alone (ground truth)", *(f"{t[i]:.4f}" for i in corners.values())]]
    rows += [[arm, *(f"{scores[arm][:, i].mean():.4f}" for i in corners.values())] for arm in arms]
    out += [markdown_table(["val accuracy (seed mean)", *corners], rows), ""]
    rows = []
    for arm, base in BASELINE.items():
        if arm in scores and base in scores:
            for name, key in METRICS.items():
                diff, low, high = paired_interval(scores[arm], scores[base], t, key, draws)
                rows.append([f"{arm} − {base}", name, f"{diff:+.3f}", f"[{low:+.3f}, {high:+.3f}]", verdict(low, high)])
    by_size = np.tile(macs, (len(seeds), 1))  # the same "scores" for every seed
    for arm in arms:
        diff, low, high = paired_interval(scores[arm], by_size, t, "kendall_tau", draws)
        rows.append(
            [f"{arm} − multiply-adds", "Kendall tau", f"{diff:+.3f}", f"[{low:+.3f}, {high:+.3f}]", verdict(low, high)]
        )
    if rows:
        out.append(markdown_table(["paired by seed", "metric", "difference", "bootstrap 95%", "verdict"], rows))
    splits = split_rows(cache, arms, seeds)
    if splits:
        header = ["few-shot split", "seed", "step", "dimension", "groups", "similarity", "cut"]
        out += ["", markdown_table(header, splits)]
    return "\n".join(out)


def split_rows(cache: dict, arms: list[str], seeds: list[int]) -> list[list[object]]:
    """One row per split a few-shot run made: where, which groups, and the similarity matrix."""
    rows = []
    for arm in arms:
        for seed in seeds:
            for made in cache["runs"][arm][str(seed)].get("fewshot_splits", []):
                sim = "; ".join(" ".join(f"{v:+.3f}" for v in row) for row in made["similarity"])
                groups = " / ".join(str(g) for g in made["groups"])
                rows.append([arm, seed, made["step"], made["dimension"], groups, sim, f"{made['cut']:.4f}"])
    return rows


def recipe_epochs(task: str) -> int:
    """The epochs of the task's own recipe (``experiment=<task>``): what every arm trains."""
    return int(composed_config([f"experiment={task}"]).trainer.max_epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cluttered", help="the experiment= whose data and recipe are used")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="epochs of every arm (default: the task recipe's)")
    parser.add_argument(
        "--truth",
        type=Path,
        help="the ground truth ranked against (default benchmarks/results/ground_truth_<task>.json); "
        "a truth trained longer than the arms is a better measured one, not a different question",
    )
    parser.add_argument("--draws", type=int, default=2000, help="bootstrap draws")
    parser.add_argument("--report", action="store_true", help="only print the report of what is cached")
    args = parser.parse_args()
    gt_path = args.truth or RESULTS / f"ground_truth_{args.task}.json"
    if not gt_path.exists():
        raise SystemExit(f"no ground truth at {gt_path}: run benchmarks/ground_truth.py --task {args.task} first")
    gt = json.loads(gt_path.read_text())
    truth, archs = truth_table(gt)
    macs = np.array([next(iter(gt["runs"][a].values()))["mmacs"] for a in archs])
    gt_epochs = next(o for o in gt["recipe"] if o.startswith("trainer.max_epochs=")).split("=")[1]
    if args.report:
        cached = RESULTS / f"ranking_{args.task}.json"
        if not cached.exists():
            raise SystemExit(f"nothing to report: no {cached} (run without --report to train the arms)")
        cache = json.loads(cached.read_text())
        if cache["archs"] != archs:
            raise SystemExit(f"the ranking cache was made for other children than those of {gt_path}")
        epochs = cache["epochs"]
    else:
        epochs = args.epochs or recipe_epochs(args.task)
        cache = train_arms(args.task, args.arms, args.seeds, archs, epochs)
        cache["truth_val_acc"] = [truth[a] for a in archs]  # for supernet.analysis.plot_ranking
        save_json(RESULTS / f"ranking_{args.task}.json", cache)
    print(
        f"ranking on {args.task}, {len(archs)} children, seeds {args.seeds}, arms trained {epochs} epochs, val "
        f"split, BN recalibrated, ranked by val accuracy against the seed-mean stand-alone accuracy "
        f"({gt_path.name}: {gt_epochs} epochs); device={machine()}"
    )
    print(report(cache, truth, macs, args.seeds, args.draws))
    print()
    print("ceiling (ground truth test-retest):")
    print(test_retest(gt))


if __name__ == "__main__":
    main()
