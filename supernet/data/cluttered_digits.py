"""Cluttered digits: scikit-learn's 8x8 digits made hard enough that children differ.

On plain digits every child of the ``tiny`` space scores 98-100%, so no ranking of children can be
measured there. Each image here is one digit, scaled, rotated, sheared and placed at a random spot
of a larger canvas, among fragments cut from other digits (clutter), with pixel noise: a task
where resolution (small details), receptive field (kernel, depth) and width all matter.

Generated on the machine, deterministic from ``seed`` (no download). The 1,797 source digits are
split first into disjoint pools (train / validation / test), and each split's images, clutter
included, are made only from its own pool, so no source digit is seen in two splits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from supernet.data.base import IndexedDataset, SupernetDataModule
from supernet.distributed import derive_seed


def _digit_pools(split_seed: int, fractions: tuple[float, float]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The source digits (``(N, 1, 8, 8)`` in [0, 1], labels), split into disjoint pools."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(split_seed, "digit pools")))
    n_val, n_test = int(len(y) * fractions[0]), int(len(y) * fractions[1])
    parts = {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}
    return {split: (x[idx], y[idx]) for split, idx in parts.items()}


def _place(
    glyphs: torch.Tensor,
    canvas: int,
    scale: torch.Tensor,
    angle: torch.Tensor,
    shear: torch.Tensor,
    shift: torch.Tensor,
) -> torch.Tensor:
    """Each 8x8 glyph drawn on a ``canvas`` x ``canvas`` image: ``scale`` (glyph size / canvas),
    rotation ``angle`` (radians), ``shear`` and centre ``shift`` (in [-1, 1] canvas coordinates)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    # inverse map from canvas coordinates to glyph coordinates (what affine_grid takes)
    a = torch.stack([torch.stack([cos, -sin + shear], -1), torch.stack([sin, cos], -1)], -2) / scale[:, None, None]
    theta = torch.cat([a, -(a @ shift.unsqueeze(-1))], dim=-1)
    grid = F.affine_grid(theta, [len(glyphs), 1, canvas, canvas], align_corners=False)
    return F.grid_sample(glyphs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def make_cluttered(
    pool: tuple[torch.Tensor, torch.Tensor],
    count: int,
    canvas: int,
    clutter: int,
    noise: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images of one split, from its pool of source digits."""
    x, y = pool
    n = len(y)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    pick = torch.randint(n, (count,), generator=generator)
    images = _place(
        x[pick],
        canvas,
        uniform(0.55, 0.8, count),
        uniform(-0.45, 0.45, count),
        uniform(-0.3, 0.3, count),
        uniform(-0.35, 0.35, count, 2),
    )
    for _ in range(clutter):
        # a fragment: a 4x4 crop of another digit at a random spot, as bright as a stroke
        # (its corner drawn per image: one corner per split would make the splits differ in kind)
        other = x[torch.randint(n, (count,), generator=generator)]
        corner = torch.randint(5, (count, 2, 1), generator=generator)
        offset = torch.arange(8) - corner  # (count, 2, 8): position inside the crop per axis
        inside = (offset >= 0) & (offset < 4)
        fragment = other * (inside[:, 0, :, None] & inside[:, 1, None, :]).unsqueeze(1)
        images = images + _place(
            fragment,
            canvas,
            uniform(0.45, 0.7, count),
            uniform(-math.pi, math.pi, count),
            torch.zeros(count),
            uniform(-0.8, 0.8, count, 2),
        )
    images = images.clamp(max=1.0) + noise * torch.randn(images.shape, generator=generator)
    return images, y[pick]


class ClutteredDigitsDataModule(SupernetDataModule):
    """``train_size``/``val_size``/``test_size`` images of ``canvas`` x ``canvas`` pixels with
    ``clutter`` fragments and Gaussian pixel noise of std ``noise``; ``data_seed`` fixes the data
    set (the pools and every image), independently of the training ``seed``."""

    num_classes = 10
    in_chans = 1

    def __init__(
        self,
        train_size: int = 6000,
        val_size: int = 10000,
        test_size: int = 2000,
        canvas: int = 24,
        clutter: int = 2,
        noise: float = 0.15,
        data_seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for key, value in (
            ("train_size", train_size),
            ("val_size", val_size),
            ("test_size", test_size),
            ("canvas", canvas),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"data.{key} must be a positive integer, got {value!r}")
        if isinstance(clutter, bool) or not isinstance(clutter, int) or clutter < 0:
            raise ValueError(f"data.clutter must be a non-negative integer, got {clutter!r}")
        if not 0 <= noise < 10:
            raise ValueError(f"data.noise must be in [0, 10), got {noise!r}")
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.canvas, self.clutter, self.noise, self.data_seed = canvas, clutter, noise, data_seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        pools = _digit_pools(self.data_seed, (0.2, 0.2))
        made = {}
        for split, count in self.sizes.items():
            generator = torch.Generator().manual_seed(derive_seed(self.data_seed, "cluttered digits", split))
            made[split] = make_cluttered(pools[split], count, self.canvas, self.clutter, self.noise, generator)
        mean, std = made["train"][0].mean(), made["train"][0].std()
        self.train_set, self.val_set, self.test_set = (
            IndexedDataset(TensorDataset((made[s][0] - mean) / std, made[s][1])) for s in ("train", "val", "test")
        )
        self.hold_out_search()
