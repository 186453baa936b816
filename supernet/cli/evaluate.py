"""``supernet-evaluate``: a table of children of a checkpoint (Hydra app over ``conf/evaluate.yaml``).

    supernet-evaluate ckpt_path=outputs/train/.../checkpoints/last.ckpt children=[max,mid,min]
    supernet-evaluate ckpt_path=... sample=50 output=tables/random50.csv    # rerun to resume
    supernet-evaluate ckpt_path=... grid=resolution
    supernet-evaluate ckpt_path=... grid=stage1.width

Columns: source (the spec, sample or grid the child came from), with ``epsinas=true`` the epsinas
zero-cost score (``supernet.search.epsinas``), then the columns of ``supernet.metrics.ChildReport``:
arch, mmacs, params_m, macs, params, search_acc/search_loss (on the split held out of training, when
the checkpoint's training held one out), val_acc/val_loss and test_acc/test_loss after BN
recalibration, calib_batches, latency_ms (+ how it was measured), then what the numbers depend on:
checkpoint_sha256 (the supernet's weights) and settings (BN recalibration, data, latency;
``supernet.cli.identity``). A rerun into a table of another checkpoint or other settings is
refused (``fresh=true`` replaces it).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, evaluator, holds_out_search, load, plain, user_errors
from supernet.cli.config_errors import one_line_config_errors
from supernet.cli.identity import latency_settings, table_identity
from supernet.cli.outputs import command_dir  # noqa: F401  (registers the resolver of hydra.run.dir)


def archs_to_measure(cfg: DictConfig, space) -> dict:
    """{arch: where it came from} for ``children``, ``sample`` and ``grid``, in that order."""
    from supernet.child.table import grid_archs, sample_archs

    children = plain(cfg.children) or []
    if isinstance(children, str):
        children = [children]
    out: dict = {}
    for spec in children:
        out.setdefault(space.resolve(spec), str(spec))
    for i, arch in enumerate(sample_archs(space, cfg.sample, cfg.seed)):
        out.setdefault(arch, f"sample:{cfg.seed}:{i}")
    if cfg.grid is not None:
        for arch in grid_archs(space, cfg.grid):
            out.setdefault(arch, f"grid:{cfg.grid}")
    if not out:
        raise ValueError("nothing to evaluate: give children=[max,min,...], sample=<N> or grid=<dimension>")
    return out


def run(cfg: DictConfig) -> list[dict]:
    from dataclasses import asdict

    from rich.progress import Progress

    from supernet.child.table import ResumableTable, write_parquet
    from supernet.search import epsinas_score

    loaded = load(cfg)
    archs = archs_to_measure(cfg, loaded.space)
    # checked before the data is read: a table of another checkpoint or other settings is refused
    extra = {"epsinas": True} if cfg.epsinas else {}
    identity = table_identity(cfg, loaded.fingerprint, latency=asdict(latency_settings(cfg)), **extra)
    remedy = "give another output=, or fresh=true to measure afresh into this one"
    table = ResumableTable(cfg.output, identity, fresh=cfg.fresh, remedy=remedy)
    todo = table.todo(archs)
    if len(todo) < len(archs):
        print(f"resuming {table.path}: {len(archs) - len(todo)} of {len(archs)} children already measured")
    if todo:
        ev = evaluator(cfg, loaded, search=holds_out_search(loaded))
        with Progress() as progress:
            task = progress.add_task("children", total=len(todo))
            # the zero-cost score reads one batch of training images: the first calibration batch
            zero_cost = (
                (lambda arch: {"epsinas": epsinas_score(loaded.model, arch, ev.calibration[0][0])})
                if cfg.epsinas
                else (lambda arch: {})
            )
            for arch in todo:
                table.add(ev.report(arch).row(source=archs[arch], **zero_cost(arch)))
                progress.advance(task)
    parquet = write_parquet(table.path)
    print_rows(table.rows)
    note = f" (and {parquet.name})" if parquet else " (parquet skipped: needs pandas and pyarrow)"
    print(f"table: {table.path}{note}")
    return table.rows


def print_rows(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="children (BN recalibrated)")
    for col in ("arch", "source", "MMACs", "params (M)", "latency ms", "val acc", "test acc"):
        # the arch folds so that the numbers stay whole on a narrow terminal
        table.add_column(
            col,
            justify="left" if col in ("arch", "source") else "right",
            overflow="fold",
            no_wrap=col != "arch",
            min_width=16 if col == "arch" else None,
        )
    for r in rows:
        num = lambda key, fmt, r=r: format(float(r[key]), fmt) if r.get(key) not in (None, "") else "-"
        table.add_row(
            str(r["arch"]),
            str(r["source"]),
            num("mmacs", ".2f"),
            num("params_m", ".3f"),
            num("latency_ms", ".2f"),
            num("val_acc", ".4f"),
            num("test_acc", ".4f"),
        )
    console = Console()
    if not console.is_terminal:  # a file or a pipe: rich would cut the table at 80 columns
        console = Console(width=max(console.width, table_width(table)))
    console.print(table)


def table_width(table) -> int:
    """The width ``table`` takes with no column folded."""
    from rich.console import Console

    return Console(width=100_000).measure(table).maximum


@one_line_config_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
