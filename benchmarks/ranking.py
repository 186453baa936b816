"""Ranking consistency of the supernet: sandwich + uniform vs sandwich + PA&DA (paths and data).

1. Pick ``--archs`` children of the ``tiny`` space spread evenly over the multiply-add range.
2. Ground truth: train each alone on digits with the fixed recipe (``sampler=fixed``, same
   optimizer/schedule/epochs); validation accuracy after BN recalibration. Cached in
   ``benchmarks/results/ranking_ground_truth.json`` together with the recipe that made it.
3. Train the supernet with (a) ``sampler=sandwich data_sampler=uniform`` and (b)
   ``sampler=sandwich_pada data_sampler=pada``, one run per seed, same budget; evaluate every
   chosen arch on the validation split after BN recalibration.
4. Kendall tau-b, Spearman rho and precision@top-25% per run: mean ± std over seeds; ranked by
   validation accuracy (as asked) and by validation loss (digits saturates near 99% accuracy, so
   accuracies tie often; the loss orders children without ties).
5. Mechanism: at fixed weights (the final weights of run (a), first seed), the relative variance
   E||g - E g||^2 / ||E g||^2 of the supernet gradient of one sandwich step over ``--draws`` draws
   of (children, mini-batch), with (a) uniform paths and data, (b) the PA&DA distributions that
   run (b) learned.

    python benchmarks/ranking.py --archs 16 --epochs 20 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import children_override, machine, markdown_table
from common import run_training as run

from supernet.distributed import derive_seed
from supernet.metrics import complexity
from supernet.metrics.ranking import ranking_report
from supernet.sampling import StepInfo
from supernet.space import load_space

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {
    "sandwich+uniform": ["sampler=sandwich", "data_sampler=uniform"],
    "sandwich+PA&DA": ["sampler=sandwich_pada", "data_sampler=pada"],
}


def spread_archs(n: int, seed: int = 0) -> list[str]:
    space = load_space("tiny")
    gen = random.Random(seed)
    pool = {space.sample(gen) for _ in range(4000)} | {space.min(), space.max()}
    ranked = sorted(pool, key=lambda a: (complexity(space, a, in_chans=1, num_classes=10).macs, str(a)))
    picks = [ranked[round(i * (len(ranked) - 1) / (n - 1))] for i in range(n)]
    return [str(a) for a in picks]


def ground_truth(archs: list[str], epochs: int) -> dict[str, float]:
    recipe = ["experiment=quickstart", f"trainer.max_epochs={epochs}", "sampler=fixed", "seed=0"]
    path = RESULTS / "ranking_ground_truth.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    if cache.get("recipe") != recipe:
        cache = {
            "recipe": recipe,
            "note": "stand-alone val accuracy and loss (BN recalibrated), digits",
            "accuracy": {},
            "loss": {},
        }
    for i, arch in enumerate(archs):
        if arch in cache["accuracy"] and arch in cache["loss"]:
            continue
        start = time.time()
        result = run(
            [*recipe, f"sampler.arch='{arch}'", f"trainer.check_val_every_n_epoch={epochs}", children_override([arch])]
        )
        cache["accuracy"][arch] = result["rows"][0]["val_acc"]
        cache["loss"][arch] = result["rows"][0]["val_loss"]
        print(
            f"  ground truth {i + 1}/{len(archs)}: {arch} -> {cache['accuracy'][arch]:.4f} ({time.time() - start:.0f}s)"
        )
        path.write_text(json.dumps(cache, indent=1))
    return {a: (cache["accuracy"][a], cache["loss"][a]) for a in archs}


@torch.no_grad()
def _flat_grad(module) -> torch.Tensor:
    return torch.cat(
        [p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in module.supernet.parameters()]
    )


def gradient_variance(module, datamodule, path_sampler, data_probs, draws: int, seed: int = 0) -> float:
    """Relative variance of the sandwich-step gradient at fixed weights."""
    from supernet.ops import resize_to

    model = module.supernet.train()
    train_set = datamodule.train_set
    gen = torch.Generator().manual_seed(seed)
    grads = []
    for d in range(draws):
        idx = torch.multinomial(data_probs, datamodule.batch_size, replacement=True, generator=gen)
        x, y = torch.stack([train_set[i][0] for i in idx]), torch.tensor([train_set[i][1] for i in idx])
        model.zero_grad(set_to_none=True)
        teacher = None
        torch.manual_seed(derive_seed(seed, "variance", d))
        for child in path_sampler.children(StepInfo(10_000 + d)):
            model.set_arch(child.arch)
            with model.regularization(child.role == "teacher"):
                logits = model(resize_to(x, child.arch.resolution))
            loss = module.step.child_loss(child, logits, y, teacher, None)
            loss.backward()
            if child.role == "teacher":
                teacher = logits.detach()
        grads.append(_flat_grad(module))
    g = torch.stack(grads)
    mean = g.mean(0)
    return float(((g - mean) ** 2).sum(1).mean() / mean.square().sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--draws", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    RESULTS.mkdir(exist_ok=True)
    archs = spread_archs(args.archs)
    print(f"{len(archs)} archs; ground truth ({args.epochs} epochs each)")
    truth = ground_truth(archs, args.epochs)
    truth_acc = [truth[a][0] for a in archs]
    truth_loss = [-truth[a][1] for a in archs]  # higher is better for the ranking metrics

    reports: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    loss_reports: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    per_run: dict[str, list[list[float]]] = {name: [] for name in CONFIGS}
    kept = {}
    for name, overrides in CONFIGS.items():
        for seed in args.seeds:
            start = time.time()
            result = run(
                [
                    "experiment=quickstart",
                    *overrides,
                    f"trainer.max_epochs={args.epochs}",
                    f"seed={seed}",
                    f"trainer.check_val_every_n_epoch={args.epochs}",
                    children_override(archs),
                ]
            )
            accs = [r["val_acc"] for r in result["rows"]]
            per_run[name].append(accs)
            reports[name].append(ranking_report(accs, truth_acc))
            loss_reports[name].append(ranking_report([-r["val_loss"] for r in result["rows"]], truth_loss))
            print(f"  {name} seed {seed}: tau={reports[name][-1]['kendall_tau']:.3f} ({time.time() - start:.0f}s)")
            if seed == args.seeds[0]:
                kept[name] = result

    # mechanism: gradient variance at the fixed weights of run (a)
    base = kept["sandwich+uniform"]
    module, dm = base["module"], base["trainer"].datamodule
    uniform_probs = torch.full((len(dm.train_set),), 1.0 / len(dm.train_set), dtype=torch.float64)
    pada = kept["sandwich+PA&DA"]
    var_uniform = gradient_variance(module, dm, module.sampler, uniform_probs, args.draws)
    var_pada = gradient_variance(
        module, dm, pada["module"].sampler, pada["trainer"].datamodule.train_sampler.probs, args.draws
    )

    metrics = list(reports["sandwich+uniform"][0])
    rows = []
    for by, all_reports in (("val accuracy", reports), ("val loss", loss_reports)):
        for name, reps in all_reports.items():
            cells = []
            for m in metrics:
                vals = [r[m] for r in reps]
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}")
            rows.append([name, by, *cells])
    table = markdown_table(["training", "ranked by", *metrics], rows)
    var_table = markdown_table(
        ["sampling at fixed weights", "relative gradient variance"],
        [
            ["uniform paths + uniform data", f"{var_uniform:.4f}"],
            ["PA&DA paths + PA&DA data (learned)", f"{var_pada:.4f}"],
        ],
    )
    print(
        f"ranking on digits/tiny, {len(archs)} archs, seeds {args.seeds}, {args.epochs} epochs, "
        f"val split, BN recalibrated; device={machine()}"
    )
    print(table)
    print(var_table)
    (RESULTS / "ranking.json").write_text(
        json.dumps(
            {
                "archs": archs,
                "truth_val_acc": truth_acc,
                "truth_val_loss": [-v for v in truth_loss],
                "supernet_val_acc": per_run,
                "reports": reports,
                "loss_reports": loss_reports,
                "gradient_variance": {"uniform": var_uniform, "pada": var_pada},
                "command": " ".join(["python benchmarks/ranking.py", *sys.argv[1:]]),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
