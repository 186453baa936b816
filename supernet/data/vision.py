"""CIFAR-10/100 (the official "python version" files) and ImageNet-layout image folders, for users
who have the files.

Nothing is downloaded unless ``download: true``; a missing folder stops with one message naming it.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from supernet.data.base import IndexedDataset, SupernetDataModule

CIFAR_STATS = {
    10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _split(n: int, val_size: int, seed: int) -> tuple[list[int], list[int]]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[val_size:], perm[:val_size]


# The official CIFAR "python version" batches are pickles. torchvision unpickles them without
# restriction; here an unpickler that can only rebuild numpy arrays (and the plain containers and
# strings around them) reads them, as ``torch.load(weights_only=True)`` does for checkpoints: a
# crafted file cannot run code.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}
_CIFAR_FILES = {  # folder, training files, test files, label key
    10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
    100: ("cifar-100-python", ["train"], ["test"], "fine_labels"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR batch holds only arrays and lists")
        with warnings.catch_warnings():  # numpy 2 renamed numpy.core; the old name still resolves
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def read_cifar(root: str | Path, num_classes: int, train: bool) -> tuple[np.ndarray, list[int]]:
    """Images (N, 32, 32, 3, uint8) and labels of a CIFAR split from the official files."""
    folder, train_files, test_files, label_key = _CIFAR_FILES[num_classes]
    images, labels = [], []
    for name in train_files if train else test_files:
        path = Path(root) / folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"CIFAR-{num_classes} file {str(path)!r} not found (data.root={str(root)!r}): put the extracted "
                f"{folder!r} folder there or set data.download=true"
            )
        try:
            with path.open("rb") as f:
                batch = _ArraysOnlyUnpickler(f, encoding="latin1").load()
            data, batch_labels = np.asarray(batch["data"], dtype=np.uint8), list(batch[label_key])
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path} is not a CIFAR-{num_classes} batch file: {err}") from None
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch_labels) != len(data):
            raise ValueError(
                f"{path} is not a CIFAR-{num_classes} batch file: data of shape {data.shape} "
                f"with {len(batch_labels)} labels"
            )
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels += [int(v) for v in batch_labels]
    bad = [v for v in labels if not 0 <= v < num_classes]
    if bad:
        raise ValueError(
            f"CIFAR-{num_classes} files under {str(root)!r} have label {bad[0]}, outside 0..{num_classes - 1}"
        )
    return np.concatenate(images), labels


class CIFARSplit(Dataset):
    """One CIFAR split as ``(transform(PIL image), label)``."""

    def __init__(self, images: np.ndarray, labels: list[int], transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


class CIFARDataModule(SupernetDataModule):
    """CIFAR-10 or CIFAR-100. ``val_size`` training images are held out for validation/search;
    the official test set is the test split."""

    in_chans = 3

    def __init__(
        self,
        root: str = "data",
        num_classes: int = 10,
        download: bool = False,
        val_size: int = 5000,
        split_seed: int = 0,
        augment: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_classes not in CIFAR_STATS:
            raise ValueError(f"data.num_classes must be 10 or 100 for CIFAR, got {num_classes}")
        self.root, self.num_classes, self.download = Path(root), num_classes, download
        self.val_size, self.split_seed, self.augment = val_size, split_seed, augment

    def _download(self) -> None:
        from torchvision import datasets
        from torchvision.datasets.utils import download_and_extract_archive

        cls = datasets.CIFAR10 if self.num_classes == 10 else datasets.CIFAR100
        if not (self.root / _CIFAR_FILES[self.num_classes][0]).is_dir():  # the archive's MD5 is checked
            download_and_extract_archive(cls.url, str(self.root), filename=cls.filename, md5=cls.tgz_md5)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from torchvision import transforms as T

        if self.download:
            self._download()
        mean, std = CIFAR_STATS[self.num_classes]
        norm = [T.ToTensor(), T.Normalize(mean, std)]
        aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if self.augment else []
        images, labels = read_cifar(self.root, self.num_classes, train=True)
        if not 0 < self.val_size < len(labels):
            raise ValueError(
                f"data.val_size={self.val_size} must be between 1 and the {len(labels)} training images - 1"
            )
        train_idx, val_idx = _split(len(labels), self.val_size, self.split_seed)
        self.train_set = IndexedDataset(Subset(CIFARSplit(images, labels, T.Compose(aug + norm)), train_idx))
        self.calib_set = self.train_set
        self.val_set = IndexedDataset(Subset(CIFARSplit(images, labels, T.Compose(norm)), val_idx))
        self.test_set = IndexedDataset(
            CIFARSplit(*read_cifar(self.root, self.num_classes, train=False), T.Compose(norm))
        )
        self.hold_out_search(Subset(CIFARSplit(images, labels, T.Compose(norm)), train_idx))


class ImageFolderDataModule(SupernetDataModule):
    """ImageNet layout: ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg``. ``val_size``
    training images are held out for validation/search; ``root/val`` is the test split."""

    in_chans = 3

    def __init__(
        self,
        root: str,
        image_size: int = 224,
        val_size: int = 10000,
        split_seed: int = 0,
        num_classes: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.root, self.image_size, self.val_size, self.split_seed = Path(root), image_size, val_size, split_seed
        self.expected_classes = num_classes

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from torchvision import datasets
        from torchvision import transforms as T

        for split in ("train", "val"):
            if not (self.root / split).is_dir():
                raise FileNotFoundError(
                    f"image folder {str(self.root / split)!r} does not exist (data.root={str(self.root)!r})"
                )
        mean, std = IMAGENET_STATS
        size = self.image_size
        train_tf = T.Compose(
            [T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)]
        )
        eval_tf = T.Compose([T.Resize(int(size / 0.875)), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])
        train_aug = datasets.ImageFolder(str(self.root / "train"), transform=train_tf)
        train_plain = datasets.ImageFolder(str(self.root / "train"), transform=eval_tf)
        test = datasets.ImageFolder(str(self.root / "val"), transform=eval_tf)
        self.num_classes = len(train_aug.classes)
        if self.expected_classes is not None and self.expected_classes != self.num_classes:
            raise ValueError(
                f"data.num_classes={self.expected_classes} but {self.root / 'train'} has "
                f"{self.num_classes} class folders"
            )
        if test.classes != train_aug.classes:
            raise ValueError(f"class folders of {self.root / 'val'} differ from those of {self.root / 'train'}")
        val_size = min(self.val_size, len(train_aug) // 10)
        train_idx, val_idx = _split(len(train_aug), val_size, self.split_seed)
        self.train_set = IndexedDataset(Subset(train_aug, train_idx))
        self.val_set = IndexedDataset(Subset(train_plain, val_idx))
        self.test_set = IndexedDataset(test)
        self.hold_out_search(Subset(train_plain, train_idx))
