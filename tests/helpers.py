"""Test helpers: run the Hydra commands in-process on small settings."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from supernet.cli.train import compose
from supernet.cli.train import train as train_overrides

# A few batches of the quickstart recipe: seconds, not minutes.
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "validation.calib_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress=null",
    "trainer.log_every_n_steps=1",
]


def compose_config(config_name: str, overrides: list[str], output_dir: Path):
    return compose(overrides, output_dir, config_name)


def train(tmp_path: Path, overrides: list[str]):
    return train_overrides([*FAST, *overrides], tmp_path)


@torch.no_grad()
def randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Random BN statistics and affine, random LayerNorm affine: checks must not rely on defaults."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "running_mean"):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
        if type(m).__name__ in ("ElasticBatchNorm2d", "ElasticLayerNorm"):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen))


def image_folder(root: Path, classes: int = 4, train: int = 16, val: int = 4, size: int = 20) -> Path:
    """A tiny ImageNet-layout folder (``train/<class>/*.png``, ``val/<class>/*.png``) of random
    images: for the image-folder loader and its random augmentations."""
    import numpy as np
    from PIL import Image

    gen = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = (gen.random((size, size, 3)) * 255).astype("uint8")
                pixels[..., c % 3] //= 2  # a class signal
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def cifar_folder(root: Path, num_classes: int = 10, per_file: int = 20) -> Path:
    """Small CIFAR files in the official "python version" layout and format (pickled dicts holding a
    uint8 array of N x 3072 and a label list; 5 training batches + a test batch for CIFAR-10)."""
    import pickle

    import numpy as np

    gen = np.random.default_rng(0)
    folder, files, key = (
        ("cifar-10-batches-py", [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"], "labels")
        if num_classes == 10
        else ("cifar-100-python", ["train", "test"], "fine_labels")
    )
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name in files:
        labels = [int(v) for v in gen.integers(0, num_classes, per_file)]
        data = gen.integers(0, 256, (per_file, 3 * 32 * 32), dtype=np.uint8)
        batch = {"batch_label": name, key: labels, "data": data, "filenames": [f"{i}.png" for i in range(per_file)]}
        (root / folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


class ChildRecorder(pl.Callback):
    """Records the children trained at every global step."""

    def __init__(self):
        self.steps: dict[int, list[str]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps[trainer.global_step - 1] = [str(c.arch) for c in outputs["step"].children]


class AllReduceCounter(pl.Callback):
    """Counts ``torch.distributed.all_reduce`` calls inside each training step of this rank and
    writes them to ``<run dir>/allreduce_rank<r>.json``."""

    def __init__(self, output_dir: str):
        self.output_dir, self.counts, self._current = output_dir, [], 0

    def on_train_start(self, trainer, pl_module):
        import torch.distributed as dist

        original = dist.all_reduce

        def counting(*args, **kwargs):
            self._current += 1
            return original(*args, **kwargs)

        dist.all_reduce = counting

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._current = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.counts.append(self._current)

    def on_train_end(self, trainer, pl_module):
        import json

        Path(self.output_dir, f"allreduce_rank{trainer.global_rank}.json").write_text(json.dumps(self.counts))


class RankSkewedSampler:
    """A deliberately broken arch sampler: its seed depends on the rank."""

    def __new__(cls, space, seed=0, **kwargs):
        import os

        from supernet.sampling import SandwichSampler

        # built before the process group exists: Lightning's launcher sets LOCAL_RANK in each process
        rank = int(os.environ.get("LOCAL_RANK", 0))
        return SandwichSampler(space, seed=seed + 1000 * rank, **kwargs)


class SigtermAt(pl.Callback):
    """Sends SIGTERM to this process at the end of training batch ``batch`` of epoch ``epoch``:
    a scheduler's signal at a chosen moment, without timing races."""

    signum = signal.SIGTERM
    group = False

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            if self.group:
                os.killpg(os.getpgrp(), self.signum)
            else:
                os.kill(os.getpid(), self.signum)


class SigintAt(SigtermAt):
    """The same with SIGINT: what a terminal sends on Ctrl-C."""

    signum = signal.SIGINT


class SigintGroupAt(SigintAt):
    """SIGINT to the whole process group, data loader workers included, as a terminal sends it on
    Ctrl-C (start the command in a session of its own)."""

    group = True


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module: the tiny supernets run no faster on two, and the
    subprocesses a module starts (CLI, DDP ranks) use the other core. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def supernet_weights(result) -> dict[str, torch.Tensor]:
    """A copy of the trained supernet's state of a ``train`` result."""
    return {k: v.detach().clone() for k, v in result["module"].supernet.state_dict().items()}
