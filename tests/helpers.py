"""Test helpers: compose the Hydra config in-process and run commands on small settings."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from supernet.cli.common import CONFIG_PATH

# A few batches of the quickstart recipe: seconds, not minutes.
FAST = [
    "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2", "validation.calib_batches=1", "trainer.enable_progress_bar=false",
    "callbacks.progress=null", "trainer.log_every_n_steps=1",
]


def compose_config(config_name: str, overrides: list[str], output_dir: Path | None = None):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_PATH):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
    return cfg


def train(tmp_path: Path, overrides: list[str]):
    from supernet.cli.train import run

    cfg = compose_config("train", [*FAST, *overrides], tmp_path)
    return run(cfg)


class ChildRecorder(pl.Callback):
    """Records the children trained at every global step."""

    def __init__(self):
        self.steps: dict[int, list[str]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps[trainer.global_step - 1] = [str(c.arch) for c in pl_module.last_children]
