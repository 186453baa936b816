"""``supernet-search``: best children of a checkpoint under limits (Hydra app over ``conf/search.yaml``).

    supernet-search ckpt_path=outputs/train/.../checkpoints/last.ckpt constraints.macs_max=2e6
    supernet-search ckpt_path=... constraints.macs_max=[1e6,2e6] extract_best=true
    supernet-search ckpt_path=... constraints.latency_ms_max=1.5 algorithm=random

Outputs in the run folder: history.csv, pareto.csv, best_<limits>.yaml (and best_<limits>/ artifacts).
A rerun into the same folder resumes the search: the archs of history.csv are not scored again
(without latency limits the resumed search takes the same path as an uninterrupted one). Its
rows record the checkpoint's SHA-256 and the settings; another checkpoint or other settings are
refused, naming what differs, unless ``fresh=true`` (which replaces the folder's search).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import hydra
import yaml
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, evaluator, load, plain, user_errors
from supernet.cli.config_errors import one_line_config_errors
from supernet.cli.identity import latency_settings, table_identity
from supernet.cli.outputs import command_dir  # noqa: F401  (registers the resolver of hydra.run.dir)


class Replay:
    """A child evaluator for a resumed search: archs already scored in the folder's history.csv
    (same checkpoint, same settings) take their validation scores and latencies from it, so the
    search replays its decisions without scoring them again; new archs go to ``evaluator``."""

    def __init__(self, evaluator, rows: list[dict]):
        self.evaluator = evaluator
        self.latency_settings, self.calib_batches = evaluator.latency_settings, evaluator.calib_batches
        # a CSV cell holds repr(float): the scores read back are the scores written
        self.scores = {
            row["arch"]: SimpleNamespace(accuracy=float(row["val_acc"]), loss=float(row["val_loss"])) for row in rows
        }
        self.latencies = {row["arch"]: float(row["latency_ms"]) for row in rows if row.get("latency_ms")}

    def complexity(self, arch):
        return self.evaluator.complexity(arch)

    def score(self, arch, split: str):
        if split == "val" and str(arch) in self.scores:
            return self.scores[str(arch)]
        return self.evaluator.score(arch, split)

    def latency(self, arch) -> float:
        if str(arch) in self.latencies:
            return self.latencies[str(arch)]
        return self.evaluator.latency(arch)


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
    out = Path(HydraConfig.get().runtime.output_dir)
    targets = expand(plain(cfg.constraints) or {})
    settings = EvolutionSettings(
        cfg.population, cfg.iterations, cfg.mutation_prob, cfg.crossover_ratio, cfg.parents, cfg.max_tries
    )
    loaded = load(cfg)
    # What the scores and the search's path depend on; a folder holding another search is refused
    # before the data is read. Latency settings count only where a limit makes the search measure it.
    limited = any(t.latency_ms_max is not None for t in targets)
    limits = [t.label for t in targets]  # by label: 2e6 and 2000000 are one limit
    search = {"algorithm": cfg.algorithm, "seed": cfg.seed, "constraints": limits, **asdict(settings)}
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
    ev = evaluator(cfg, loaded, cache_val=True, val_batches=cfg.val_batches, test=cfg.extract_best)
    problem = Replay(ev, resumed)
    if resumed:
        print(f"resuming {history.path}: {len(problem.scores)} archs already scored")
    check_targets(loaded.space, targets, problem.complexity, problem.latency)  # now latency limits too
    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        if len(rows) > len(resumed):  # the rows before were replayed from the file as it is
            history.write(rows)
        bar.advance(task)

    with Progress() as bar:
        task = bar.add_task(f"{cfg.algorithm} search", total=settings.budget * len(targets))
        result = run_search(loaded.space, problem, targets, cfg.algorithm, settings, cfg.seed, progress=record)
    history.write(result.history)
    pareto.write([candidate.report(problem).row() for candidate in result.front()])
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
        print(
            f"{target.label}: {cand.arch}  val acc {cand.val_acc:.4f}, {cand.macs / 1e6:.2f} MMACs, "
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
    print(f"results: {out} (history.csv, pareto.csv, best_*.yaml)")
    return {"result": result, "output_dir": str(out)}


@one_line_config_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
