"""Common frame of the data modules: splits, seeded shuffling, calibration batches, indices.

Every dataset yields ``(image, label, index)``; the index lets the PA&DA data sampler attach a
score to each training sample. Images come at the largest resolution of the space; each child's
input is resized inside the training step (``supernet.ops.resize_to``), never by the model.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from supernet.distributed import UniformDataSampler, derive_seed


class IndexedDataset(Dataset):
    """Wraps a dataset of ``(x, y)`` so that items are ``(x, y, index)``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]):
        if isinstance(key, tuple):  # (index, augmentation seed) from SeededDraws
            index, seed = key
            with torch.random.fork_rng(devices=[]):
                # torchvision's random transforms draw from torch's CPU generator; seeding only it
                # costs ~1 us (torch.manual_seed also visits every accelerator: ~60 us)
                torch.default_generator.manual_seed(seed)
                x, y = self.dataset[index]
        else:
            index = key
            x, y = self.dataset[index]
        return x, y, index


class SeededDraws(Sampler[tuple[int, int]]):
    """The ``(index, augmentation seed)`` pairs of a ``ShardedSampler`` (its ``draws()``), for an
    ``IndexedDataset``: random augmentations then depend on (seed, epoch, position) only — not on
    the RNG state the loader happens to find — so a resumed run, a run with more workers and a
    run on more ranks see the same augmented images."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        return self.sampler.draws()

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it on the loader's sampler
        self.sampler.set_epoch(epoch)


class ResumableDataLoader(DataLoader):
    """A training loader that Lightning can resume mid-epoch.

    Lightning stores ``state_dict()`` of stateful loaders in its checkpoints and calls
    ``load_state_dict`` on resume; the next iteration of the same epoch then starts after the
    batches already consumed (the sampler skips their indices, no data is loaded for them).
    ``sampler`` is a ``supernet.distributed.ShardedSampler`` (its ``epoch`` and ``start`` place the
    resume); the loader draws ``(index, augmentation seed)`` pairs from it (``SeededDraws``).
    """

    def __init__(self, dataset: Dataset, sampler, **kwargs):
        super().__init__(dataset, sampler=SeededDraws(sampler), **kwargs)
        self.draws = sampler
        self._consumed, self._resume_at = 0, None

    def __iter__(self):
        sampler = self.draws
        skip = 0
        if self._resume_at is not None and self._resume_at["epoch"] == sampler.epoch:
            skip = self._resume_at["batches"]
        self._resume_at = None
        sampler.start, self._consumed = skip * self.batch_size, skip
        try:
            for batch in super().__iter__():
                self._consumed += 1
                yield batch
        finally:
            sampler.start = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.draws.epoch), "batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


class SupernetDataModule(pl.LightningDataModule):
    """Subclasses set ``train_set``, ``val_set``, ``test_set`` (and ``calib_set`` if the
    calibration images need other transforms than training) in ``setup``, then call
    ``hold_out_search`` to carve the search split out of the training split.

    ``search_size`` training images are held out of training as the *search* split: a child
    search scores candidates on it, so that validation and test stay unbiased reports of the
    child it picks. The held-out images are the same in every run, process and rank (a fixed
    permutation of the training split, independent of every seed), so a search after training
    with the same ``search_size`` scores on images the supernet never trained on.
    """

    num_classes: int
    in_chans: int

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool = False,
        search_size: int = 0,
    ):
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"data.batch_size must be a positive integer, got {batch_size}")
        if isinstance(search_size, bool) or not isinstance(search_size, int) or search_size < 0:
            raise ValueError(f"data.search_size must be a non-negative integer, got {search_size!r}")
        self.search_size = search_size
        self.search_set: Dataset | None = None
        self.search_indices: list[int] = []  # positions in the training split before the hold-out
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.eval_batch_size = eval_batch_size or batch_size
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.train_sampler: Sampler[int] | None = None  # replaced by the PA&DA data sampler when configured

    def _loader(
        self,
        dataset: Dataset,
        batch_size: int,
        sampler=None,
        drop_last=False,
        loader_cls: type[DataLoader] = DataLoader,
    ) -> DataLoader:
        return loader_cls(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def _check(self, dataset: Dataset | None, split: str) -> Dataset:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for the {split} data")
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ValueError(f"{type(self).__name__}: the {split} split is empty")
        return dataset

    def train_dataloader(self) -> DataLoader:
        train = self._check(self.train_set, "train")
        if not isinstance(train, IndexedDataset):
            raise TypeError(
                f"{type(self).__name__}.train_set must be a supernet.data.IndexedDataset (it yields "
                "the sample index that PA&DA scores and that seeds the augmentations)"
            )
        sampler = self.train_sampler or UniformDataSampler(len(train), self.seed)  # type: ignore[arg-type]
        return self._loader(
            train, self.batch_size, sampler, drop_last=len(train) >= self.batch_size, loader_cls=ResumableDataLoader
        )

    def hold_out_search(self, eval_view: Dataset | None = None) -> None:
        """Move ``search_size`` images of the training split into the search split (nothing when
        it is 0). ``eval_view`` is the training split with evaluation transforms (same order; by
        default the training split itself, for data without augmentation): the search split is
        scored like validation."""
        if not self.search_size:
            return
        train = self._check(self.train_set, "train")
        source = train.dataset if isinstance(train, IndexedDataset) else train
        n = len(source)  # type: ignore[arg-type]
        if self.search_size >= n:
            raise ValueError(f"data.search_size={self.search_size} must be below the {n} training images")
        # a fixed stream: the split may not depend on the training seed (a search after training
        # with another seed must hold out the same images)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed("search split", n))).tolist()
        self.search_indices, keep = sorted(perm[: self.search_size]), sorted(perm[self.search_size :])
        calib_is_train = getattr(self, "calib_set", None) is train
        self.train_set = IndexedDataset(Subset(source, keep))
        if calib_is_train:
            self.calib_set = self.train_set
        self.search_set = IndexedDataset(Subset(eval_view if eval_view is not None else source, self.search_indices))

    def search_split(self) -> dict[str, int | str]:
        """What identifies the held-out search split: its size, the training split's size before
        the hold-out, and a digest of the held-out positions (recorded in checkpoints)."""
        import hashlib

        train = self._check(self.train_set, "train")
        digest = hashlib.sha256(repr(self.search_indices).encode()).hexdigest()[:16]
        return {"size": self.search_size, "of": len(train) + self.search_size, "sha256": digest}  # type: ignore[arg-type]

    def search_dataloader(self) -> DataLoader:
        if self.search_set is None:
            raise ValueError(
                f"{type(self).__name__} holds out no search split (data.search_size=0): set data.search_size "
                "to the value the supernet was trained with"
            )
        return self._loader(self._check(self.search_set, "search"), self.eval_batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._check(self.val_set, "validation"), self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._check(self.test_set, "test"), self.eval_batch_size)

    def calibration_dataloader(self) -> DataLoader:
        """Training images in a fixed (seeded) order, for BN recalibration."""
        train = self._check(getattr(self, "calib_set", None) or self.train_set, "train")
        return self._loader(train, self.batch_size, UniformDataSampler(len(train), self.seed, stream="calibration"))
