"""CIFAR-10/100 (torchvision files) and ImageNet-layout image folders, for users who have the files.

Nothing is downloaded unless ``download: true``; a missing folder stops with one message naming it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Subset

from supernet.data.base import IndexedDataset, SupernetDataModule

CIFAR_STATS = {
    10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _split(n: int, val_size: int, seed: int) -> tuple[list[int], list[int]]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[val_size:], perm[:val_size]


class CIFARDataModule(SupernetDataModule):
    """CIFAR-10 or CIFAR-100. ``val_size`` training images are held out for validation/search;
    the official test set is the test split."""

    in_chans = 3

    def __init__(self, root: str = "data", num_classes: int = 10, download: bool = False, val_size: int = 5000,
                 split_seed: int = 0, augment: bool = True, **kwargs):
        super().__init__(**kwargs)
        if num_classes not in CIFAR_STATS:
            raise ValueError(f"data.num_classes must be 10 or 100 for CIFAR, got {num_classes}")
        self.root, self.num_classes, self.download = Path(root), num_classes, download
        self.val_size, self.split_seed, self.augment = val_size, split_seed, augment

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from torchvision import datasets, transforms as T

        cls = datasets.CIFAR10 if self.num_classes == 10 else datasets.CIFAR100
        mean, std = CIFAR_STATS[self.num_classes]
        norm = [T.ToTensor(), T.Normalize(mean, std)]
        aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if self.augment else []
        try:
            train_aug = cls(str(self.root), train=True, download=self.download, transform=T.Compose(aug + norm))
            train_plain = cls(str(self.root), train=True, download=False, transform=T.Compose(norm))
            test = cls(str(self.root), train=False, download=self.download, transform=T.Compose(norm))
        except RuntimeError as err:
            raise FileNotFoundError(
                f"CIFAR-{self.num_classes} files not found under data.root={str(self.root)!r} ({err}); "
                f"put the extracted 'cifar-{self.num_classes}-batches-py' folder there or set data.download=true"
            ) from None
        train_idx, val_idx = _split(len(train_aug), self.val_size, self.split_seed)
        self.train_set = IndexedDataset(Subset(train_aug, train_idx))
        self.calib_set = self.train_set
        self.val_set = IndexedDataset(Subset(train_plain, val_idx))
        self.test_set = IndexedDataset(test)


class ImageFolderDataModule(SupernetDataModule):
    """ImageNet layout: ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg``. ``val_size``
    training images are held out for validation/search; ``root/val`` is the test split."""

    in_chans = 3

    def __init__(self, root: str, image_size: int = 224, val_size: int = 10000, split_seed: int = 0,
                 num_classes: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.root, self.image_size, self.val_size, self.split_seed = Path(root), image_size, val_size, split_seed
        self.expected_classes = num_classes

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from torchvision import datasets, transforms as T

        for split in ("train", "val"):
            if not (self.root / split).is_dir():
                raise FileNotFoundError(f"image folder {str(self.root / split)!r} does not exist (data.root={str(self.root)!r})")
        mean, std = IMAGENET_STATS
        size = self.image_size
        train_tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
        eval_tf = T.Compose([T.Resize(int(size / 0.875)), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])
        train_aug = datasets.ImageFolder(str(self.root / "train"), transform=train_tf)
        train_plain = datasets.ImageFolder(str(self.root / "train"), transform=eval_tf)
        test = datasets.ImageFolder(str(self.root / "val"), transform=eval_tf)
        self.num_classes = len(train_aug.classes)
        if self.expected_classes is not None and self.expected_classes != self.num_classes:
            raise ValueError(
                f"data.num_classes={self.expected_classes} but {self.root / 'train'} has {self.num_classes} class folders"
            )
        if test.classes != train_aug.classes:
            raise ValueError(f"class folders of {self.root / 'val'} differ from those of {self.root / 'train'}")
        val_size = min(self.val_size, len(train_aug) // 10)
        train_idx, val_idx = _split(len(train_aug), val_size, self.split_seed)
        self.train_set = IndexedDataset(Subset(train_aug, train_idx))
        self.val_set = IndexedDataset(Subset(train_plain, val_idx))
        self.test_set = IndexedDataset(test)
