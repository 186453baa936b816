"""Search arms at an equal measured budget, on the held-out search split (issue 16).

A supernet of the ranking task (``--task``'s recipe, sandwich uniform) is trained with
``data.search_size`` training images held out (cached in ``benchmarks/cache/``: a rerun reuses it).
Under one multiply-add limit (half the largest child's), for each seed, four searches score the
same number of distinct feasible children on the search split after BN recalibration:

    random                 uniform feasible children
    evolution              the default evolutionary search
    evolution + predictor  prescreen=predictor: each generation draws ``pool`` times as many
                           children and scores those a gradient-boosted-tree predictor (refit on
                           every child scored so far) ranks highest
    evolution + epsinas    prescreen=epsinas: the same, ranked by the epsinas zero-cost score

Each best child (by search-split accuracy) is reported with its validation and test accuracy (never
used to choose). Paired by seed: each arm minus evolution, with a 95% t-interval (scipy).

Also: the predictor's 5-fold cross-validated Kendall tau on every child scored; and against the
stand-alone ground truth (``benchmarks/results/ground_truth_<task>.json``), the Kendall tau of the
epsinas score, of this supernet's validation accuracy, and of multiply-adds alone, beside the
ground truth's own test-retest tau.

    python benchmarks/search_arms.py --seeds 0 1 2 3 4 --write
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import QUIET, composed_config, machine, markdown_table

from supernet.metrics.ranking import kendall_tau
from supernet.search import Constraints, EvolutionSettings, Search, best
from supernet.search.epsinas import epsinas_score
from supernet.search.predictor import cross_validated_tau
from supernet.search.prescreen import EpsinasPrescreen, PredictorPrescreen

HERE = Path(__file__).resolve().parent
ARMS = ("random", "evolution", "evolution + predictor", "evolution + epsinas")


def supernet(task: str, search_size: int, epochs: int) -> Path:
    """The checkpoint of a sandwich supernet trained with ``search_size`` images held out (cached)."""
    from supernet.cli.train import train

    folder = HERE / "cache" / f"search_arms_{task}_{search_size}_{epochs}"
    ckpt = folder / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        print(f"training the supernet ({task}, data.search_size={search_size}, {epochs} epochs) into {folder} ...")
        train(
            [
                *QUIET[:3],  # keeps the last checkpoint
                f"experiment={task}",
                f"++data.search_size={search_size}",  # ++: whether or not the data config names it
                f"trainer.max_epochs={epochs}",
                "test_after_fit=false",
            ],
            folder,
        )
    return ckpt


def evaluator(ckpt: Path, task: str, calib_batches: int):
    from hydra.utils import instantiate

    from supernet.child import evaluator_for, load_checkpoint

    loaded = load_checkpoint(ckpt)
    cfg = composed_config([f"experiment={task}"])
    datamodule = instantiate(cfg.data, search_size=loaded.meta["search_split"]["size"])
    ev = evaluator_for(
        loaded.model, datamodule, calib_batches=calib_batches, device=torch.device("cpu"), cache_val=True, search=True
    )
    assert datamodule.search_split() == loaded.meta["search_split"], "the data holds out other images than training"
    return loaded, ev


def interval(diffs: list[float]) -> str:
    mean = statistics.mean(diffs)
    if len(diffs) < 2 or statistics.stdev(diffs) == 0:
        return f"{mean:+.4f} (all seeds alike)"
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    verdict = "higher" if mean - half > 0 else "lower" if mean + half < 0 else "not resolved"
    return f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}] {verdict}"


def ground_truth_taus(task: str, loaded, ev) -> list[list[str]]:
    """Kendall tau against the seed-mean stand-alone accuracy of the ground truth's children."""
    path = HERE / "results" / f"ground_truth_{task}.json"
    runs = json.loads(path.read_text())["runs"]
    archs = [loaded.space.resolve(a) for a in runs]
    seeds = sorted(set.intersection(*(set(r) for r in runs.values())))
    truth = [statistics.mean(runs[str(a)][s]["val_acc"] for s in seeds) for a in archs]
    batch = ev.calibration[0][0]
    scores = {
        "epsinas (zero-cost, one training batch)": [epsinas_score(loaded.model, a, batch) for a in archs],
        "this supernet, validation accuracy": [ev.score(a, "val").accuracy for a in archs],
        "multiply-adds alone": [ev.complexity(a).macs for a in archs],
    }
    retest = [
        kendall_tau([runs[str(a)][s]["val_acc"] for a in archs], [runs[str(a)][t]["val_acc"] for a in archs])
        for s, t in itertools.combinations(seeds, 2)
    ]
    rows = [[name, f"{kendall_tau(values, truth):.3f}"] for name, values in scores.items()]
    rows.append(["ground truth test-retest (seed vs seed)", " / ".join(f"{t:.3f}" for t in retest)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cluttered", help="the experiment= whose data and recipe are used")
    parser.add_argument("--search-size", type=int, default=1000, help="training images held out for the search")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--calib-batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="append the tables to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()

    ckpt = supernet(args.task, args.search_size, args.epochs)
    loaded, ev = evaluator(ckpt, args.task, args.calib_batches)
    space = loaded.space
    limit = Constraints(macs_max=ev.complexity(space.max()).macs // 2)
    settings = EvolutionSettings(population=args.population, iterations=args.iterations, pool=args.pool)
    print(f"limit {limit.label}, {settings.budget} scored children per search, seeds {args.seeds}")

    cache: dict = {}  # a child scored by one arm costs nothing to another: scores do not depend on the arm
    found: dict[str, list] = {arm: [] for arm in ARMS}
    rows = []
    for seed in args.seeds:
        for arm in ARMS:
            search = Search(space, ev, limit, cache=cache)
            if arm == "random":
                scored = search.random(settings.budget, seed)
            else:
                prescreen = {
                    "evolution": None,
                    "evolution + predictor": PredictorPrescreen(space, "gbt", seed=seed),
                    "evolution + epsinas": EpsinasPrescreen(loaded.model, ev.calibration[0][0]),
                }[arm]
                scored = search.evolution(settings, seed, prescreen)
            assert len({c.arch for c in scored}) == settings.budget
            top = best(scored)
            val, test = ev.score(top.arch, "val").accuracy, ev.score(top.arch, "test").accuracy
            found[arm].append((top.acc, val, test))
            rows.append([seed, arm, f"{top.acc:.4f}", f"{val:.4f}", f"{test:.4f}", f"{top.macs / 1e6:.3f}"])
            print(
                f"seed {seed} {arm:22s}: search {top.acc:.4f}, val {val:.4f}, test {test:.4f}, "
                f"{top.macs / 1e6:.3f} MMACs  [{time.time() - start:.0f} s]",
                flush=True,
            )
    means = [[arm, *(f"{statistics.mean(f[i] for f in found[arm]):.4f}" for i in range(3))] for arm in ARMS]
    paired = [
        [
            f"{arm} − evolution",
            *(interval([a[i] - b[i] for a, b in zip(found[arm], found["evolution"])]) for i in range(3)),
        ]
        for arm in ARMS
        if arm != "evolution"
    ]
    pairs = list({c.arch: (c.arch, c.acc) for c in cache.values()}.values())
    predictor_tau = cross_validated_tau(space, pairs, "gbt", seed=0)
    taus = ground_truth_taus(args.task, loaded, ev)

    per_seed = markdown_table(["seed", "arm", "best search acc", "its val acc", "its test acc", "MMACs"], rows)
    mean_table = markdown_table(["arm (mean over seeds)", "search acc", "val acc", "test acc"], means)
    paired_table = markdown_table(["paired by seed", "search acc", "val acc", "test acc"], paired)
    tau_table = markdown_table(["ranking of the ground truth's children by", "Kendall tau vs stand-alone"], taus)
    predictor_line = (
        f"Predictor (gradient-boosted trees on the ordinal encoding): 5-fold cross-validated Kendall tau "
        f"{predictor_tau:.3f} over the {len(pairs)} distinct children the searches scored (search-split accuracy)."
    )
    report = "\n\n".join([per_seed, mean_table, paired_table, predictor_line, tau_table])
    print(report)
    if args.write:
        command = "python benchmarks/search_arms.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## Search arms at equal measured budget (issue 16)\n\n"
            f"`{command}` — {machine()}, {time.time() - start:.0f} s. Supernet: `experiment={args.task}` "
            f"(sandwich uniform, {args.epochs} epochs) with `data.search_size={args.search_size}` training images "
            f"held out; limit {limit.label} (half the largest child's multiply-adds); each search scores "
            f"{settings.budget} distinct feasible children (population {settings.population}, "
            f"{settings.iterations} iterations; prescreens draw {settings.pool}x as many) on the search split "
            f"after BN recalibration ({args.calib_batches} batches). Validation and test accuracy of each best child "
            f"are reported, never used to choose. Intervals: 95% t over seeds, paired.\n\n{report}\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(text)
        print(f"appended to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
