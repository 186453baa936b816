"""Analysis of training runs, for notebooks and scripts (``supernet-report``).

    from supernet import analysis
    run = analysis.load_run("outputs/train/2026-11-27/10-00-00")
    analysis.plot_accuracy_vs_cost(run.children_table())
    analysis.plot_training_curves(run.metrics)
    analysis.plot_pada_heatmaps(run.metrics)

Everything reads files the commands write: ``.hydra/config.yaml``, ``logs/metrics.csv`` (the
whole run, across resumes), ``checkpoints/last.ckpt`` (loaded with ``weights_only=True``), and ``supernet-evaluate`` /
``supernet-search`` tables (``*.csv``) found under the run directory or passed explicitly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from supernet.checkpoint_format import CHECKPOINT_KEY
from supernet.child.checkpoint import read_checkpoint
from supernet.errors import first_line
from supernet.search import pareto_front
from supernet.space.children import child_names

_VAL_ACC = re.compile(r"^val/(?P<child>[^/]+)/acc$")
_PADA_P = re.compile(r"^pada/(?P<dim>.+)/p(?P<value>[0-9.]+)$")


@dataclass
class Run:
    path: Path
    config: dict[str, Any]
    metrics: Any  # pandas.DataFrame of logs/metrics.csv (None if absent)
    meta: dict[str, Any] | None  # the CHECKPOINT_KEY entry of checkpoints/last.ckpt
    tables: dict[str, Any] = field(default_factory=dict)  # name -> DataFrame of evaluate/search CSVs

    def children_table(self):
        """One row per evaluated child: the rows of every ``supernet-evaluate`` / ``supernet-search``
        table found (a CSV with ``arch``, ``mmacs`` and ``val_acc`` columns, whatever its name; one
        row per arch), else the validation children of the training run. A ``corner`` column says
        which rows are the space's ``max`` and ``min`` children."""
        import pandas as pd

        from supernet.space import SearchSpace

        space = SearchSpace.from_dict(self.meta["space"]) if self.meta else None
        evaluated = [t for t in self.tables.values() if {"arch", "mmacs", "val_acc"} <= set(t.columns)]
        if evaluated:
            # an arch scored on the search split only (a search's history.csv) and reported on
            # validation elsewhere (its pareto.csv): the row with the validation score is kept
            table = pd.concat(evaluated, ignore_index=True)
            table = table.sort_values("val_acc", na_position="first", kind="stable").drop_duplicates(
                "arch", keep="last"
            )
        elif space is None:
            raise FileNotFoundError(f"{self.path}: no checkpoint and no supernet-evaluate table to read children from")
        else:
            table = self._validation_children(space)
        corners = {str(space.max()): "max", str(space.min()): "min"} if space else {}
        return table.assign(corner=table["arch"].map(corners).fillna("")).reset_index(drop=True)

    def _validation_children(self, space):
        import pandas as pd

        from supernet.metrics import ChildReport, complexity

        last = self.metrics.ffill().iloc[-1] if self.metrics is not None else {}
        calib_batches = (self.config.get("validation") or {}).get("calib_batches")
        rows = []
        for name, spec in child_names(self.meta["val_children"]).items():
            arch = space.resolve(spec)
            c = complexity(space, arch, in_chans=self.meta["in_chans"], num_classes=self.meta["num_classes"])
            scores = {
                f"{split}_{metric}": float(last.get(f"{split}/{name}/{metric}", np.nan))
                for split in ("val", "test")
                for metric in ("acc", "loss")
            }
            rows.append(ChildReport(arch, c, calib_batches=calib_batches, **scores).row(child=name))
        return pd.DataFrame(rows)


def load_run(run_dir: str | Path, tables: dict[str, str | Path] | None = None) -> Run:
    """Read a ``supernet-train`` run directory (and optional extra CSV tables)."""
    import pandas as pd

    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory not found: {path}")
    config_file, metrics_file = path / ".hydra" / "config.yaml", path / "logs" / "metrics.csv"
    ckpt = path / "checkpoints" / "last.ckpt"
    if not (config_file.exists() or metrics_file.exists() or ckpt.exists()):
        raise FileNotFoundError(
            f"{path} is not a supernet-train run directory "
            "(it has no .hydra/config.yaml, logs/metrics.csv or checkpoints/last.ckpt)"
        )

    def read(file: Path, reader):
        try:
            return reader(file)
        except Exception as err:  # noqa: BLE001 - yaml, CSV and encoding errors all mean "unreadable"
            raise ValueError(f"{file} is not readable: {first_line(err)}") from None

    config = read(config_file, lambda f: yaml.safe_load(f.read_text())) if config_file.exists() else {}
    metrics = read(metrics_file, pd.read_csv) if metrics_file.exists() else None
    if metrics is not None and not {"epoch", "step"} <= set(metrics.columns):
        raise ValueError(f"{metrics_file} has no 'epoch' and 'step' columns: not the CSV log of supernet-train")
    if metrics is not None:
        # One row per step, every leg of a resumed run. A step can be logged twice: by a leg that a
        # kill cut short after its last checkpoint and by the leg that resumed from it; the later
        # value counts. The train, validation and test rows of one step become one row.
        metrics = metrics.groupby("step", as_index=False, sort=True).last()
    meta = dict(read_checkpoint(ckpt)[CHECKPOINT_KEY]) if ckpt.exists() else None
    found = {p.stem: p for p in sorted(path.rglob("*.csv")) if p != metrics_file}
    found.update({k: Path(v) for k, v in (tables or {}).items()})
    return Run(path, config, metrics, meta, {k: read(v, pd.read_csv) for k, v in found.items()})


def _axes(ax):
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=(6, 4))[1]


def plot_accuracy_vs_cost(table, cost: str = "mmacs", accuracy: str = "val_acc", ax=None):
    """Accuracy vs multiply-adds (or latency) of evaluated children, Pareto front drawn, and the
    largest / smallest child marked. ``table`` has the columns of ``supernet.metrics.ChildReport``
    rows; ``cost`` and ``accuracy`` name two of them (e.g. ``latency_ms``, ``test_acc``)."""
    ax = _axes(ax)
    x, y = table[cost].to_numpy(float), table[accuracy].to_numpy(float)
    ax.scatter(x, y, s=18, alpha=0.6, label="children")
    measured = [i for i in range(len(x)) if np.isfinite(x[i]) and np.isfinite(y[i])]  # e.g. latency not measured
    front = pareto_front(measured, cost=lambda i: x[i], value=lambda i: y[i])  # by increasing cost
    ax.plot(x[front], y[front], "r-", lw=1.5, label="Pareto front")
    # the space's max/min children when they were evaluated, else the extremes of what was
    corners = table["corner"].to_numpy() if "corner" in table.columns else np.array([""] * len(x))
    marks = [(str(c), i) for i, c in enumerate(corners) if c] or [
        ("largest evaluated", int(np.argmax(x))),
        ("smallest evaluated", int(np.argmin(x))),
    ]
    for label, idx in marks:
        ax.annotate(label, (x[idx], y[idx]), textcoords="offset points", xytext=(4, 4))
        ax.scatter([x[idx]], [y[idx]], marker="*", s=120, c="k")
    unit = "latency (ms)" if "latency" in cost else "multiply-adds (millions)"
    ax.set(xlabel=unit, ylabel=f"{accuracy.replace('_', ' ')} (fraction)", title="children: accuracy vs cost")
    ax.legend()
    return ax


def plot_training_curves(metrics, ax=None):
    """Validation accuracy per validation child over epochs."""
    ax = _axes(ax)
    for col in metrics.columns:
        match = _VAL_ACC.match(col)
        if match:
            series = metrics[["epoch", col]].dropna()
            ax.plot(series["epoch"], series[col], marker=".", label=match["child"])
    ax.set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="validation children (BN recalibrated)")
    ax.legend()
    return ax


def pada_history(metrics) -> dict[str, Any]:
    """``{dimension: DataFrame(epoch x value -> probability)}`` from the PA&DA columns of the logs."""
    out: dict[str, dict[str, Any]] = {}
    for col in metrics.columns:
        match = _PADA_P.match(col)
        if match:
            series = metrics[["epoch", col]].dropna().set_index("epoch")[col]
            out.setdefault(match["dim"], {})[match["value"]] = series
    import pandas as pd

    return {dim: pd.DataFrame(values).sort_index(axis=1, key=lambda c: c.astype(float)) for dim, values in out.items()}


def plot_pada_heatmaps(metrics, ncols: int = 4):
    """One heatmap per searchable dimension: probability of each value (columns) per epoch (rows)."""
    import matplotlib.pyplot as plt

    history = pada_history(metrics)
    if not history:
        raise ValueError("no PA&DA distributions in these logs (train with sampler=sandwich_pada)")
    nrows = -(-len(history) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, (dim, table) in zip(axes.flat, history.items()):
        image = ax.imshow(table.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1, origin="lower")
        ax.set_xticks(range(table.shape[1]), table.columns)
        ax.set(title=dim, xlabel="value", ylabel="epoch")
        fig.colorbar(image, ax=ax, label="probability")
    for ax in list(axes.flat)[len(history) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_data_importance(meta: dict[str, Any], ax=None):
    """Histogram of the PA&DA data sampling probabilities, as multiples of uniform (N * p_i)."""
    ax = _axes(ax)
    if not meta or "data_sampler" not in meta:
        raise ValueError("no PA&DA data sampler state in this checkpoint (train with data_sampler=pada)")
    probs = meta["data_sampler"]["probs"].double()
    ax.hist((probs * len(probs)).numpy(), bins=40)
    ax.set(
        xlabel="sampling probability / uniform probability",
        ylabel="training samples (count)",
        title="PA&DA data importance",
    )
    return ax


def plot_ranking(ranking: dict[str, Any] | str | Path, ax=None):
    """Supernet vs stand-alone validation accuracy of each child (``benchmarks/results/
    ranking_<task>.json`` of ``benchmarks/ranking.py``): per training arm the seed-mean score of
    every child, labelled with the mean Kendall tau and Spearman rho over the seeds."""
    from supernet.metrics.ranking import kendall_tau, spearman_rho

    if not isinstance(ranking, dict):
        ranking = json.loads(Path(ranking).read_text())
    ax = _axes(ax)
    truth = np.asarray(ranking["truth_val_acc"])
    for name, runs in ranking["runs"].items():
        scores = np.asarray([run["val_acc"] for run in runs.values()])
        tau = np.mean([kendall_tau(s, truth) for s in scores])
        rho = np.mean([spearman_rho(s, truth) for s in scores])
        ax.scatter(truth, scores.mean(0), s=20, label=f"{name}: tau={tau:.2f}, rho={rho:.2f} ({len(scores)} seeds)")
    ax.set(
        xlabel="stand-alone validation accuracy (seed mean)",
        ylabel="supernet validation accuracy (seed mean)",
        title="ranking consistency (tau, rho: mean over seeds)",
    )
    ax.legend(fontsize=8)
    return ax


def save_report(
    run_dir: str | Path, out_dir: str | Path | None = None, ranking: str | Path | None = None
) -> list[Path]:
    """Write the figures of a run as PNGs (``supernet-report``); returns their paths. Every figure
    is drawn before any is written, and each file is written atomically: a failure leaves the
    folder as it was."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from supernet.files import atomic_file, check_file_destination

    run = load_run(run_dir)
    out = Path(out_dir) if out_dir else run.path / "report"
    check_file_destination(out / "report.png", "report")  # before drawing: out_dir (or a parent) is a file
    children = run.children_table()
    figures = {"accuracy_vs_macs": plot_accuracy_vs_cost(children).figure}
    if "latency_ms" in children.columns and children["latency_ms"].notna().any():
        figures["accuracy_vs_latency"] = plot_accuracy_vs_cost(children, cost="latency_ms").figure
    if run.metrics is not None:
        figures["training_curves"] = plot_training_curves(run.metrics).figure
        if pada_history(run.metrics):
            figures["pada_paths"] = plot_pada_heatmaps(run.metrics)
    if run.meta and "data_sampler" in run.meta:
        figures["pada_data"] = plot_data_importance(run.meta).figure
    if ranking is not None:
        figures["ranking"] = plot_ranking(ranking).figure
    written = []
    for name, fig in figures.items():
        path = out / f"{name}.png"
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
        plt.close(fig)
        written.append(path)
    return written
