"""Evolutionary search vs random search at an equal number of scored children (issue 6).

On a digits supernet (``--ckpt``, or a fresh ``supernet-train`` quickstart run), with the
multiply-add limit at half of the largest child's: for each seed, run the evolutionary search and
the random baseline with the same budget (``population * (iterations + 1)`` distinct feasible
children, each scored on the validation split after BN recalibration, as ``supernet-search``
does), then report each best child's validation accuracy — what the searches optimise — and, for
information only, its test accuracy. Appends the table to ``benchmarks/RESULTS.md`` with ``--write``.

    python benchmarks/search_vs_random.py --ckpt outputs/train/.../checkpoints/last.ckpt --write
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import QUIET, machine, markdown_table

from supernet.search import Constraints, EvolutionSettings, Search, best

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def quickstart_checkpoint(folder: Path) -> Path:
    from supernet.cli.train import train

    print("training the quickstart supernet (supernet-train defaults) ...")
    train([*QUIET[:2], "test_after_fit=false"], folder)
    return folder / "checkpoints" / "last.ckpt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, help="a supernet-train checkpoint of the tiny space on digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--calib-batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from hydra.utils import instantiate

    from supernet.child import evaluator_for, load_checkpoint
    from supernet.cli.train import compose

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or quickstart_checkpoint(Path(tmp) / "train")
        cfg = compose([f"ckpt_path={ckpt}"], Path(tmp) / "search", "search")
        loaded = load_checkpoint(ckpt)
        ev = evaluator_for(
            loaded.model,
            instantiate(cfg.data),
            calib_batches=args.calib_batches,
            device=torch.device("cpu"),
            cache_val=True,
        )
    space = loaded.space
    limit = Constraints(macs_max=ev.complexity(space.max()).macs // 2)
    settings = EvolutionSettings(population=args.population, iterations=args.iterations)
    print(f"limit {limit.label}, budget {settings.budget} scored children per search, seeds {args.seeds}")

    cache: dict = {}  # scores are shared: a child scored by one search costs nothing to the other
    rows, bests = [], {"evolution": [], "random": []}
    start = time.time()
    for seed in args.seeds:
        for method in ("evolution", "random"):
            search = Search(space, ev, limit, cache=cache)
            scored = search.evolution(settings, seed) if method == "evolution" else search.random(settings.budget, seed)
            assert len({c.arch for c in scored}) == settings.budget
            top = best(scored)
            test = ev.score(top.arch, "test").accuracy
            bests[method].append((top, test))
            rows.append(
                [
                    seed,
                    method,
                    len(scored),
                    f"{top.val_acc:.4f}",
                    f"{top.val_loss:.4f}",
                    f"{test:.4f}",
                    f"{top.macs / 1e6:.3f}",
                    f"`{top.arch}`",
                ]
            )
            print(
                f"seed {seed} {method:9s}: best val acc {top.val_acc:.4f} (loss {top.val_loss:.4f}), "
                f"test acc {test:.4f}, {top.macs / 1e6:.3f} MMACs  [{time.time() - start:.0f}s]"
            )
    for method, results in bests.items():
        rows.append(
            [
                "mean",
                method,
                settings.budget,
                f"{statistics.mean(t.val_acc for t, _ in results):.4f}",
                f"{statistics.mean(t.val_loss for t, _ in results):.4f}",
                f"{statistics.mean(test for _, test in results):.4f}",
                "",
                "",
            ]
        )
    pairs = list(zip(bests["evolution"], bests["random"]))
    ties_or_wins = sum(e.val_acc >= r.val_acc for (e, _), (r, _) in pairs)
    strict = sum(e.fitness > r.fitness for (e, _), (r, _) in pairs)
    verdict = (
        f"evolution's best validation accuracy >= random's on {ties_or_wins} of {len(pairs)} seeds; "
        f"strictly better on (accuracy, then lower loss) on {strict} of {len(pairs)}"
    )
    header = ["seed", "method", "scored", "best val acc", "its val loss", "its test acc", "MMACs", "arch"]
    table = markdown_table(header, rows)
    print(table + "\n" + verdict)
    if args.write:
        command = "python benchmarks/search_vs_random.py " + " ".join(sys.argv[1:])
        ckpt_note = f"checkpoint `{args.ckpt}`" if args.ckpt else "a fresh quickstart checkpoint"
        text = (
            f"\n## Search vs random (issue 6)\n\n"
            f"Best child under {limit.label} (half the largest child's multiply-adds; the smallest child needs "
            f"{ev.complexity(space.min()).macs}) found by the evolutionary search and by random search, each scoring "
            f"{settings.budget} distinct feasible children (population {settings.population}, {settings.iterations} "
            f"iterations) on the validation split after BN recalibration ({args.calib_batches} batches); ties on "
            f"accuracy broken by validation loss. The comparison is paired: with one seed, evolution's initial "
            f"population is the random search's first {settings.population} draws. Test accuracy is for "
            f"information only (never used to choose). Digits' validation split has 269 images, so one image "
            f"is 0.37 points.\n\n"
            f"`{command}` — {ckpt_note} ({space.name} space), {machine()}, "
            f"{time.time() - start:.0f} s:\n\n{table}\n\n{verdict}.\n"
        )
        with RESULTS.open("a") as f:
            f.write(text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
