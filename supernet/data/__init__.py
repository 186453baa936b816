"""LightningDataModules: digits (embedded default), CIFAR-10/100, image folders, synthetic."""

from supernet.data.base import IndexedDataset, ResumableDataLoader, SupernetDataModule, resize_to
from supernet.data.digits import DigitsDataModule
from supernet.data.synthetic import SyntheticDataModule
from supernet.data.vision import CIFARDataModule, ImageFolderDataModule

__all__ = [
    "SupernetDataModule", "IndexedDataset", "ResumableDataLoader", "resize_to", "DigitsDataModule",
    "SyntheticDataModule", "CIFARDataModule", "ImageFolderDataModule",
]
