"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), shipped inside scikit-learn."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from supernet.data.base import IndexedDataset, SupernetDataModule


class DigitsDataModule(SupernetDataModule):
    num_classes = 10
    in_chans = 1

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError(
                f"data.val_fraction and data.test_fraction must be in (0, 1) and sum below 1, "
                f"got {val_fraction} and {test_fraction}"
            )
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        n_val, n_test = int(len(y) * self.val_fraction), int(len(y) * self.test_fraction)
        parts = {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}
        train_x = x[parts["train"]]
        mean, std = train_x.mean(), train_x.std()
        make = lambda idx: IndexedDataset(TensorDataset((x[idx] - mean) / std, y[idx]))
        self.train_set, self.val_set, self.test_set = make(parts["train"]), make(parts["val"]), make(parts["test"])
        self.hold_out_search()
