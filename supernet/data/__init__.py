"""LightningDataModules: digits (embedded default), cluttered digits (embedded, harder), CIFAR-10/100,
image folders, synthetic."""

from supernet.data.base import IndexedDataset, ResumableDataLoader, SeededDraws, SupernetDataModule
from supernet.data.cluttered_digits import ClutteredDigitsDataModule
from supernet.data.digits import DigitsDataModule
from supernet.data.synthetic import SyntheticDataModule
from supernet.data.vision import CIFARDataModule, ImageFolderDataModule

__all__ = [
    "SupernetDataModule",
    "IndexedDataset",
    "ResumableDataLoader",
    "SeededDraws",
    "DigitsDataModule",
    "ClutteredDigitsDataModule",
    "SyntheticDataModule",
    "CIFARDataModule",
    "ImageFolderDataModule",
]
