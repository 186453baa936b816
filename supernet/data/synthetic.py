"""Random images and labels, generated on the fly from a seed: for speed and memory measurements."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from supernet.data.base import IndexedDataset, SupernetDataModule
from supernet.distributed import derive_seed


class SyntheticImages(Dataset):
    def __init__(self, num_samples: int, image_size: int, in_chans: int, num_classes: int, seed: int):
        self.num_samples, self.shape = num_samples, (in_chans, image_size, image_size)
        self.num_classes, self.seed = num_classes, seed

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int):
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "synthetic", index))
        return torch.randn(self.shape, generator=gen), int(torch.randint(self.num_classes, (), generator=gen))


class SyntheticDataModule(SupernetDataModule):
    def __init__(
        self, num_samples: int = 1024, image_size: int = 32, in_chans: int = 3, num_classes: int = 10, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_samples, self.image_size = num_samples, image_size
        self.in_chans, self.num_classes = in_chans, num_classes

    def setup(self, stage: str | None = None) -> None:
        make = lambda n, s: IndexedDataset(SyntheticImages(n, self.image_size, self.in_chans, self.num_classes, s))
        self.train_set = make(self.num_samples, self.seed)
        self.val_set = make(max(self.num_samples // 8, 1), self.seed + 1)
        self.test_set = make(max(self.num_samples // 8, 1), self.seed + 2)
        self.hold_out_search()
