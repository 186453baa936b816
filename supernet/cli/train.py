"""``supernet-train``: train a supernet (Hydra app over ``conf/train.yaml``).

supernet-train                                   # quickstart: tiny space on digits, CPU
supernet-train experiment=bignas_cifar10 data.root=/data/cifar
supernet-train trainer.max_epochs=3 sampler.num_random=3
supernet-train -m seed=0,1,2                     # sweep
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, plain, user_errors
from supernet.cli.config_errors import one_line_config_errors


def build_module(cfg: DictConfig, num_classes: int, in_chans: int, data_sampler=None):
    from hydra.utils import instantiate

    from supernet.space import SearchSpace
    from supernet.training import SupernetModule

    space = SearchSpace.from_dict(plain(cfg.space))
    model = cfg.model
    distill = instantiate(cfg.distill) if cfg.distill.get("_target_") else None
    return SupernetModule(
        space,
        num_classes,
        in_chans,
        model_kwargs=plain(model.kwargs),
        sampler=instantiate(cfg.sampler),
        data_sampler=data_sampler,
        distill=distill,
        label_smoothing=model.label_smoothing,
        optimizer=instantiate({k: v for k, v in plain(model.optimizer).items() if v is not None}),
        weight_decay=model.weight_decay,
        schedule=plain(model.schedule),
        grad_clip=plain(model.grad_clip),
        accumulate=model.accumulate,
        seed=cfg.seed,
        on_nonfinite=model.on_nonfinite,
        check_arch_sync=model.check_arch_sync,
        channels_last=model.channels_last,
        sync_batchnorm=bool(cfg.trainer.get("sync_batchnorm", False)),
    )


def build_trainer(cfg: DictConfig, output_dir: Path, **overrides: Any):
    """The Trainer with the configured callbacks, child validation (``cfg.validation``) and loggers."""
    from hydra.utils import instantiate

    os.environ.setdefault("WANDB_MODE", "offline")
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks.append(instantiate(cfg.validation, children=plain(cfg.validation.children)))
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(output_dir), **overrides
    )


def resolve_ckpt(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from, checked before any work: it exists, is a readable
    checkpoint (never unpickled: ``weights_only``), and was written by supernet-train."""
    from supernet.child import read_checkpoint

    if ckpt_path is None:
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = " (ckpt_path=last resumes the run in hydra.run.dir=<its folder>)" if ckpt_path == "last" else ""
        raise FileNotFoundError(f"checkpoint not found: {path}{hint}")
    read_checkpoint(path)  # memory-mapped: the check costs little
    return str(path)


def print_summary(rows: list[dict[str, Any]], output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="validation children (BN recalibrated)")
    for col in ("child", "arch", "MMACs", "params (M)", "val acc", "test acc"):
        table.add_column(
            col, justify="left" if col in ("child", "arch") else "right", overflow="fold", no_wrap=col != "arch"
        )
    for r in rows:
        table.add_row(
            r["child"],
            r["arch"],
            f"{r['mmacs']:.2f}",
            f"{r['params_m']:.3f}",
            f"{r['val_acc']:.4f}",
            f"{r['test_acc']:.4f}",
        )
    console = Console()
    console.print(table)
    console.print(f"checkpoints: {output_dir / 'checkpoints'}")
    console.print(f"logs:        {output_dir / 'logs'}  (config: {output_dir / '.hydra'})")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train as configured; returns the summary rows (also printed)."""
    import lightning.pytorch as pl
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from supernet.cli.validation import validate_train_config
    from supernet.sampling import PadaDataSampler
    from supernet.training import ChildValidation

    validate_train_config(cfg)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    ckpt_path = resolve_ckpt(cfg.get("ckpt_path"), output_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    if cfg.get("data_sampler"):
        datamodule.train_sampler = instantiate(cfg.data_sampler)(num_samples=len(datamodule.train_set), seed=cfg.seed)
    learned = datamodule.train_sampler if isinstance(datamodule.train_sampler, PadaDataSampler) else None
    module = build_module(cfg, datamodule.num_classes, datamodule.in_chans, data_sampler=learned)
    trainer = build_trainer(cfg, output_dir)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    if cfg.get("test_after_fit", True):
        trainer.test(module, datamodule=datamodule, verbose=False)
    validation = next(c for c in trainer.callbacks if isinstance(c, ChildValidation))
    rows = validation.summary_rows(module)
    if trainer.is_global_zero:
        print_summary(rows, output_dir)
    return {"rows": rows, "output_dir": str(output_dir), "module": module, "trainer": trainer}


def compose(overrides: list[str], output_dir: str | Path, config_name: str = "train") -> DictConfig:
    """The composed config of ``supernet-train <overrides>``, with its run directory set to
    ``output_dir`` (for notebooks, benchmarks and tests that train without the command line)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_PATH):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def train(overrides: list[str], output_dir: str | Path) -> dict[str, Any]:
    """Run ``supernet-train <overrides>`` in this process, writing into ``output_dir``."""
    return run(compose(overrides, output_dir))


@one_line_config_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
