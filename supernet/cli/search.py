"""``supernet-search``: best children of a checkpoint under limits (Hydra app over ``conf/search.yaml``).

    supernet-search ckpt_path=outputs/train/.../checkpoints/last.ckpt constraints.macs_max=2e6
    supernet-search ckpt_path=... constraints.macs_max=[1e6,2e6] extract_best=true
    supernet-search ckpt_path=... constraints.latency_ms_max=1.5 algorithm=random

Outputs in the run folder: history.csv, pareto.csv, best_<limits>.yaml (and best_<limits>/ artifacts).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import yaml
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, evaluator, load, plain, user_errors


def run(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig
    from rich.progress import Progress

    from supernet.child import arch_document, extract_artifact
    from supernet.child.table import write_rows
    from supernet.files import atomic_file, check_folder_destination
    from supernet.search import EvolutionSettings, check_algorithm, check_targets, expand, run_search

    check_algorithm(cfg.algorithm)
    out = Path(HydraConfig.get().runtime.output_dir)
    targets = expand(plain(cfg.constraints) or {})
    settings = EvolutionSettings(
        cfg.population, cfg.iterations, cfg.mutation_prob, cfg.crossover_ratio, cfg.parents, cfg.max_tries
    )
    if cfg.extract_best:
        for target in targets:
            check_folder_destination(out / f"best_{target.label}", overwrite=False)
    loaded = load(cfg)
    check_targets(loaded.space, targets, loaded.model.complexity)  # before the data is read
    ev = evaluator(cfg, loaded, cache_val=True, val_batches=cfg.val_batches, test=cfg.extract_best)
    check_targets(loaded.space, targets, ev.complexity, ev.latency)  # now latency limits too
    with Progress() as bar:
        task = bar.add_task(f"{cfg.algorithm} search", total=settings.budget * len(targets))
        result = run_search(
            loaded.space,
            ev,
            targets,
            cfg.algorithm,
            settings,
            cfg.seed,
            progress=lambda target, candidate: bar.advance(task),
        )
    write_rows(out / "history.csv", result.history)
    write_rows(out / "pareto.csv", [candidate.report(ev).row() for candidate in result.front()])
    model = loaded.model
    for target, cand in result.best.items():
        report = cand.report(ev).to_dict()
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
                model_kwargs=loaded.meta.get("model_kwargs"),
                onnx=cfg.onnx,
                source={"checkpoint": str(cfg.ckpt_path), "constraints": target.as_dict()},
            )
    print(f"results: {out} (history.csv, pareto.csv, best_*.yaml)")
    return {"result": result, "output_dir": str(out)}


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
