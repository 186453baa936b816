"""``supernet-search``: best children of a checkpoint under limits, or their accuracy front against
a cost (Hydra app over ``conf/search.yaml``).

    supernet-search ckpt_path=outputs/train/.../checkpoints/last.ckpt constraints.macs_max=2e6
    supernet-search ckpt_path=... constraints.macs_max=[1e6,2e6] extract_best=true
    supernet-search ckpt_path=... constraints.latency_ms_max=1.5 algorithm=random
    supernet-search ckpt_path=... objective=pareto pareto.cost=latency prescreen=predictor

Candidates are scored on the search split the checkpoint's training held out (``data.search_size``);
the front and the picks are reported on validation and test beside it. Outputs in the run folder:
history.csv, pareto.csv (the front, its rows numbered by ``point``: ``supernet-extract
arch=<pareto.csv>:<point>``), pareto.png, best_<limits>.yaml (and best_<limits>/ artifacts), and
with ``prescreen=predictor`` predictor.json. A rerun into the same folder resumes the search: the
archs of history.csv are not scored again (without latency limits the resumed search takes the
same path as an uninterrupted one). Its rows record the checkpoint's SHA-256 and the settings;
another checkpoint or other settings are refused, naming what differs, unless ``fresh=true``
(which replaces the folder's search).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import hydra
import yaml
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, evaluator, held_out_split, load, plain, user_errors
from supernet.cli.config_errors import one_line_config_errors
from supernet.cli.identity import latency_settings, table_identity
from supernet.cli.outputs import command_dir  # noqa: F401  (registers the resolver of hydra.run.dir)


class Replay:
    """A child evaluator for a resumed search: archs already scored in the folder's history.csv
    (same checkpoint, same settings) take their scores on the search's ``split`` and latencies
    from it, so the search replays its decisions without scoring them again; new archs go to
    ``evaluator``."""

    def __init__(self, evaluator, rows: list[dict], split: str):
        self.evaluator, self.split = evaluator, split
        self.latency_settings, self.calib_batches = evaluator.latency_settings, evaluator.calib_batches
        # a CSV cell holds repr(float): the scores read back are the scores written
        self.scores = {
            row["arch"]: SimpleNamespace(accuracy=float(row[f"{split}_acc"]), loss=float(row[f"{split}_loss"]))
            for row in rows
        }
        self.latencies = {row["arch"]: float(row["latency_ms"]) for row in rows if row.get("latency_ms")}

    def complexity(self, arch):
        return self.evaluator.complexity(arch)

    def score(self, arch, split: str):
        if split == self.split and str(arch) in self.scores:
            return self.scores[str(arch)]
        return self.evaluator.score(arch, split)

    def latency(self, arch) -> float:
        if str(arch) in self.latencies:
            return self.latencies[str(arch)]
        return self.evaluator.latency(arch)


SPLITS = ("search", "val")


def check_options(cfg: DictConfig) -> None:
    """Refuse a bad split, objective, Pareto or prescreen setting before anything is read."""
    from supernet.search.predictor import MODEL_KINDS
    from supernet.search.prescreen import PRESCREENS

    if cfg.split not in SPLITS:
        raise ValueError(f"split={cfg.split!r} is not one of {list(SPLITS)}")
    if cfg.objective not in ("accuracy", "pareto"):
        raise ValueError(f"objective={cfg.objective!r} is not one of ['accuracy', 'pareto']")
    if cfg.pareto.cost not in ("macs", "latency", "params"):
        raise ValueError(f"pareto.cost={cfg.pareto.cost!r} is not one of ['macs', 'latency', 'params']")
    prescreen = cfg.prescreen or "none"
    if prescreen not in PRESCREENS:
        raise ValueError(f"prescreen={cfg.prescreen!r} is not one of {list(PRESCREENS)}")
    if prescreen == "predictor" and cfg.predictor.model not in MODEL_KINDS:
        raise ValueError(f"predictor.model={cfg.predictor.model!r} is not one of {list(MODEL_KINDS)}")


def make_prescreen(cfg: DictConfig, loaded, ev):
    """The configured prescreen (None for ``prescreen=none``)."""
    from supernet.search.predictor import read_pairs
    from supernet.search.prescreen import EpsinasPrescreen, PredictorPrescreen

    if (cfg.prescreen or "none") == "none":
        return None
    if cfg.prescreen == "epsinas":  # one batch of training images, the first of the calibration cache
        return EpsinasPrescreen(loaded.model, ev.calibration[0][0])
    prior = [
        pair
        for table in plain(cfg.predictor.tables) or []
        for pair in read_pairs(table, loaded.space, cfg.predictor.column)
    ]
    return PredictorPrescreen(loaded.space, cfg.predictor.model, seed=cfg.seed, prior=prior)


def run(cfg: DictConfig) -> dict:
    from dataclasses import asdict

    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from rich.progress import Progress

    from supernet.child import arch_document, extract_artifact
    from supernet.child.table import KeyedTable
    from supernet.files import atomic_file, check_folder_destination
    from supernet.search import EvolutionSettings, check_algorithm, check_targets, expand, run_search

    check_algorithm(cfg.algorithm)
    check_options(cfg)
    out = Path(HydraConfig.get().runtime.output_dir)
    targets = expand(plain(cfg.constraints) or {})
    settings = EvolutionSettings(
        cfg.population, cfg.iterations, cfg.mutation_prob, cfg.crossover_ratio, cfg.parents, cfg.max_tries, cfg.pool
    )
    objective = cfg.pareto.cost if cfg.objective == "pareto" else "accuracy"
    loaded = load(cfg)
    held_out = held_out_split(loaded) if cfg.split == "search" else None
    # What the scores and the search's path depend on; a folder holding another search is refused
    # before the data is read. Latency settings count only where the search measures latency.
    limited = any(t.latency_ms_max is not None for t in targets) or objective == "latency"
    limits = [t.label for t in targets]  # by label: 2e6 and 2000000 are one limit
    search = {
        "algorithm": cfg.algorithm,
        "seed": cfg.seed,
        "constraints": limits,
        "split": cfg.split,
        **({"search_split": held_out} if held_out else {}),
        "objective": objective,
        **({"bins": cfg.pareto.bins} if objective != "accuracy" else {}),
        "prescreen": cfg.prescreen or "none",
        **({"predictor": plain(cfg.predictor)} if cfg.prescreen == "predictor" else {}),
        **asdict(settings),
    }
    identity = table_identity(
        cfg,
        loaded.fingerprint,
        val_batches=cfg.val_batches,
        search=search,
        **({"latency": asdict(latency_settings(cfg))} if limited else {}),
    )
    remedy = "give another hydra.run.dir=, or fresh=true to search afresh into this one"
    history = KeyedTable(out / "history.csv", identity, cfg.fresh, remedy)
    pareto = KeyedTable(out / "pareto.csv", identity, cfg.fresh, remedy)
    resumed = history.rows
    if cfg.extract_best:  # a resumed search replaces the artifacts of its own earlier run
        for target in targets:
            check_folder_destination(out / f"best_{target.label}", overwrite=cfg.fresh or bool(resumed))
    check_targets(loaded.space, targets, loaded.model.complexity)  # before the data is read
    ev = evaluator(cfg, loaded, cache_val=True, val_batches=cfg.val_batches, search=cfg.split == "search")
    problem = Replay(ev, resumed, cfg.split)
    if resumed:
        print(f"resuming {history.path}: {len(problem.scores)} archs already scored")
    check_targets(loaded.space, targets, problem.complexity, problem.latency)  # now latency limits too
    prescreen = make_prescreen(cfg, loaded, ev)
    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        if len(rows) > len(resumed):  # the rows before were replayed from the file as it is
            history.write(rows)
        bar.advance(task)

    with Progress() as bar:
        task = bar.add_task(f"{cfg.algorithm} search", total=settings.budget * len(targets))
        result = run_search(
            loaded.space,
            problem,
            targets,
            cfg.algorithm,
            settings,
            cfg.seed,
            progress=record,
            split=cfg.split,
            objective=objective,
            bins=cfg.pareto.bins,
            prescreen=prescreen,
        )
    history.write(result.history)
    front = result.front()
    # what a deployment engineer reads: the points of the front and the picks, on validation and test
    # beside the split that chose them (the front's few archs are scored once more on each)
    report_splits = [s for s in ("val", "test") if s != cfg.split]
    for cand in {c.arch: c for c in [*front, *result.best.values()]}.values():
        for split in report_splits:
            score = ev.score(cand.arch, split)
            cand.reported.update({f"{split}_acc": score.accuracy, f"{split}_loss": score.loss})
    pareto.write([cand.report(problem).row(point=i) for i, cand in enumerate(front)])
    figure = plot_front(out / "pareto.png", history.path, pareto.path, result.cost, f"{cfg.split}_acc")
    if cfg.prescreen == "predictor":
        report_predictor(out / "predictor.json", loaded.space, result, cfg)
    if cfg.fresh:  # the best files of the search replaced, where this one has no limits of the same name
        labels = {f"best_{target.label}" for target in targets}
        for stale in out.glob("best_*"):
            if stale.name.removesuffix(".yaml") in labels:
                continue
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    model = loaded.model
    for target, cand in result.best.items():
        report = cand.report(problem).to_dict()
        del report["arch"]  # the document holds the arch already (as a mapping and as a string)
        doc = arch_document(
            loaded.space,
            cand.arch,
            model.num_classes,
            model.in_chans,
            loaded.meta.get("model_kwargs"),
            constraints=target.as_dict(),
            algorithm=cfg.algorithm,
            checkpoint=str(cfg.ckpt_path),
            checkpoint_sha256=loaded.fingerprint,
            **report,
        )
        with atomic_file(out / f"best_{target.label}.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        scores = ", ".join(
            f"{split} acc {cand.report(problem).to_dict()[f'{split}_acc']:.4f}" for split in (cfg.split, *report_splits)
        )
        print(
            f"{target.label}: {cand.arch}  {scores}, {cand.macs / 1e6:.2f} MMACs, "
            f"{cand.params / 1e6:.3f} M params" + (f", {cand.latency_ms:.2f} ms" if cand.latency_ms else "")
        )
        if cfg.extract_best:
            extract_artifact(
                ev,
                cand.arch,
                out / f"best_{target.label}",
                instantiate(cfg.data),  # its evaluation transform: the input contract
                model_kwargs=loaded.meta.get("model_kwargs"),
                overwrite=cfg.fresh or bool(resumed),
                onnx=cfg.onnx,
                source={
                    "checkpoint": str(cfg.ckpt_path),
                    "checkpoint_sha256": loaded.fingerprint,
                    "constraints": target.as_dict(),
                },
            )
    print(
        f"front: {len(front)} points against {result.cost} in {pareto.path}" + (f" ({figure.name})" if figure else "")
    )
    print(
        f"results: {out} (history.csv, pareto.csv, best_*.yaml); "
        f"take a point of the front with supernet-extract arch={pareto.path}:<point>"
    )
    return {"result": result, "output_dir": str(out)}


def plot_front(path: Path, history: Path, front: Path, cost: str, accuracy: str) -> Path | None:
    """Every scored arch and the front, accuracy against ``cost`` (needs the analysis extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas as pd
    except ImportError:
        print("pareto.png skipped: the figure needs `pip install supernet[analysis]` (matplotlib, pandas)")
        return None
    from supernet.files import atomic_file

    column = {"macs": "mmacs", "params": "params_m", "latency": "latency_ms"}[cost]
    table, points = pd.read_csv(history), pd.read_csv(front)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(table[column], table[accuracy], s=14, alpha=0.5, label="scored")
    ax.plot(points[column], points[accuracy], "r.-", label="front")
    for _, point in points.iterrows():
        ax.annotate(
            str(int(point["point"])),
            (point[column], point[accuracy]),
            textcoords="offset points",
            xytext=(3, -9),
            fontsize=7,
        )
    unit = {"mmacs": "multiply-adds (millions)", "params_m": "parameters (millions)", "latency_ms": "latency (ms)"}[
        column
    ]
    ax.set(xlabel=unit, ylabel=accuracy.replace("_", " "), title="search: accuracy front (points: pareto.csv rows)")
    ax.legend()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def report_predictor(path: Path, space, result, cfg: DictConfig) -> None:
    """Fit the predictor on every arch the search scored, save it, and print its cross-validated
    Kendall tau (how well it ranks scored children it was not fit on)."""
    from supernet.search.predictor import AccuracyPredictor, cross_validated_tau

    pairs = list({c.arch: (c.arch, c.acc) for cs in result.scored.values() for c in cs}.values())
    tau = cross_validated_tau(space, pairs, cfg.predictor.model, seed=cfg.seed)
    AccuracyPredictor(space, cfg.predictor.model, seed=cfg.seed).fit(pairs).save(path)
    print(f"predictor: Kendall tau {tau:.3f} on held-out scored children (5-fold); saved to {path}")


@one_line_config_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
