"""``ChildValidation``: validation and test of a fixed set of children, each after BN recalibration.

At the start of every validation (and test) run the BN statistics of each child are recomputed
on training batches (``calibrate_bn``); every batch is then evaluated by every child with its own
statistics, into one torchmetrics collection per child, logged as ``<split>/<child>/<metric>``.
The supernet's training statistics are set aside while this runs and come back at its end, so
training and checkpoints never depend on when validation ran (a checkpoint saved during
validation, on a signal, carries the training statistics too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from supernet.checkpoint_format import CHECKPOINT_KEY, WEIGHTS_PREFIX
from supernet.metrics.report import ChildReport
from supernet.models.calibration import BNState, bn_state, calibrate_bn, load_bn_state
from supernet.space import Arch
from supernet.space.children import child_names


class ChildValidation(pl.Callback):
    """``children``: specs as ``validation.children`` takes them (``max``, ``min``, ``mid``,
    ``random:<seed>``, arch strings or arch files; a mapping names them); ``calib_batches``:
    training batches per BN recalibration. The model is the LightningModule's ``supernet``."""

    def __init__(self, children: Mapping[str, str] | Sequence[str] = ("max", "min"), calib_batches: int = 8):
        self.specs = child_names(children)
        self.calib_batches = calib_batches
        self.children: dict[str, Arch] = {}
        self.metrics: dict[str, nn.ModuleDict] = {}
        self.results: dict[str, dict[str, float]] = {}  # {child: {"val_acc": ..., "test_loss": ...}}
        self.evaluated_at: dict[str, int] = {}  # {split: the global step whose weights ``results`` hold}
        self._bn_states: dict[str, BNState] = {}  # calibrated statistics of each child
        self._training_bn: BNState | None = None  # the training statistics, while validation replaces them

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.children:  # set up by an earlier fit/validate/test of this trainer: keep its results
            return
        space = pl_module.supernet.space
        self.children = {name: space.resolve(spec) for name, spec in self.specs.items()}
        self.results = {name: {} for name in self.children}
        num_classes = pl_module.supernet.num_classes
        self.metrics = {
            split: nn.ModuleDict(
                {
                    name: MetricCollection(
                        {
                            "acc": MulticlassAccuracy(num_classes, average="micro"),
                            "loss": MeanMetric(),
                        }
                    )
                    for name in self.children
                }
            ).to(pl_module.device)
            for split in ("val", "test")
        }

    # -- one run: calibrate, evaluate every batch, log -------------------------------------------
    def _start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        supernet = pl_module.supernet
        if self._training_bn is None:
            self._training_bn = bn_state(supernet)
        loader = trainer.datamodule.calibration_dataloader()
        self._bn_states = {
            name: calibrate_bn(supernet, loader, self.calib_batches, arch=arch) for name, arch in self.children.items()
        }

    def _batch(self, split: str, pl_module: pl.LightningModule, batch) -> None:
        x, y = batch[0], batch[1]
        supernet = pl_module.supernet
        for name, arch in self.children.items():
            load_bn_state(supernet, self._bn_states[name])
            supernet.set_arch(arch)
            logits = supernet(pl_module.inputs(x, arch.resolution))
            metrics = self.metrics[split][name]
            metrics["acc"].update(logits, y)
            metrics["loss"].update(nn.functional.cross_entropy(logits, y), weight=y.numel())

    def _end(self, split: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for name in self.children:
            collection = self.metrics[split][name]
            values = collection.compute()  # torchmetrics syncs its states: every rank holds the global value
            for metric, value in values.items():
                # sync_dist: Lightning's mean over ranks of values that are already equal. It keeps the
                # value logged on every rank (ModelCheckpoint monitors it on each; rank_zero_only would
                # not) and tells Lightning the value is global, which it otherwise warns about under DDP.
                pl_module.log(
                    f"{split}/{name}/{metric}",
                    value,
                    prog_bar=metric == "acc" and name in ("max", "min"),
                    sync_dist=True,
                )
            self.results[name].update({f"{split}_{k}": float(v) for k, v in values.items()})
            collection.reset()
        self.evaluated_at[split] = trainer.global_step
        if self._training_bn is not None:
            load_bn_state(pl_module.supernet, self._training_bn)
            self._training_bn = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module)

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch("val", pl_module, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch("test", pl_module, batch)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._end("val", trainer, pl_module)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._end("test", trainer, pl_module)

    # -- checkpoints and the final table ---------------------------------------------------------
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if self._training_bn is not None:  # saved during validation (a signal, an exception)
            checkpoint["state_dict"].update({WEIGHTS_PREFIX + k: v for k, v in self._training_bn.items()})
        checkpoint.setdefault(CHECKPOINT_KEY, {})["val_children"] = {n: str(a) for n, a in self.children.items()}

    def summary_rows(self, pl_module: pl.LightningModule) -> list[dict[str, Any]]:
        """Rows of the final table (``ChildReport`` rows): arch, multiply-adds, params, val/test
        accuracy and loss of every child (NaN where that split was not evaluated)."""
        return [
            ChildReport(
                arch, pl_module.supernet.complexity(arch), calib_batches=self.calib_batches, **self.results[name]
            ).row(child=name)
            for name, arch in self.children.items()
        ]
