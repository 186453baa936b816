"""The CIFAR and image-folder loaders, on small files the tests write."""

import pickle

import pytest
import torch
from helpers import cifar_folder, image_folder, train

from supernet.data import CIFARDataModule, ImageFolderDataModule


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_reads_the_official_file_format(tmp_path, num_classes):
    root = cifar_folder(tmp_path, num_classes, per_file=20)
    dm = CIFARDataModule(root=str(root), num_classes=num_classes, val_size=10, batch_size=4)
    dm.setup()
    train_count = 100 if num_classes == 10 else 20
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (train_count - 10, 10, 20)
    x, y, index = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.max() < num_classes
    assert index.shape == (4,)


def test_cifar_refuses_a_batch_file_that_would_run_code(tmp_path):
    root = cifar_folder(tmp_path)
    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({"data": Bomb()}, protocol=2))
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 batch file: refused to load"):
        CIFARDataModule(root=str(root), val_size=10).setup()
    assert not marker.exists()


def test_cifar_names_a_missing_file(tmp_path):
    root = cifar_folder(tmp_path)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch' not found"):
        CIFARDataModule(root=str(root), val_size=10).setup()


def test_training_runs_on_cifar_files(tmp_path):
    root = cifar_folder(tmp_path / "cifar")
    result = train(
        tmp_path / "run",
        [
            "data=cifar10",
            f"data.root={root}",
            "data.val_size=10",
            "data.search_size=10",
            "data.batch_size=8",
            "test_after_fit=false",
        ],
    )
    assert result["trainer"].global_step == 3
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in result["rows"])


def test_image_folder_reads_the_imagenet_layout(tmp_path):
    root = image_folder(tmp_path, classes=3, train=10, val=2)
    dm = ImageFolderDataModule(root=str(root), image_size=24, val_size=6, batch_size=5)
    dm.setup()
    assert dm.num_classes == 3 and (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (27, 3, 6)
    x, y, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (5, 3, 24, 24) and y.max() < 3


def test_training_runs_on_synthetic_data(tmp_path):
    """The benchmarks' data: random images from a seed, through the same training loader."""
    result = train(
        tmp_path,
        ["data=synthetic", "data.image_size=24", "data.num_samples=64", "data.batch_size=16", "test_after_fit=false"],
    )
    assert result["trainer"].global_step == 3


def test_a_training_set_without_indices_is_refused(tmp_path):
    from supernet.data import SyntheticDataModule

    dm = SyntheticDataModule(num_samples=8)
    dm.setup()
    dm.train_set = dm.train_set.dataset  # a user's module forgetting the IndexedDataset wrapper
    with pytest.raises(TypeError, match="train_set must be a supernet.data.IndexedDataset"):
        dm.train_dataloader()


def test_cluttered_digits_are_deterministic_with_disjoint_splits():
    """The embedded ranking task: the same data set from the same data_seed (another from another),
    validation and test of at least 1,000 images, and no source digit shared between splits."""
    from supernet.data import ClutteredDigitsDataModule
    from supernet.data.cluttered_digits import _digit_pools

    def tensors(data_seed):
        dm = ClutteredDigitsDataModule(train_size=300, val_size=1000, test_size=1000, data_seed=data_seed)
        dm.setup()
        return [torch.stack([dm_set[i][0] for i in range(len(dm_set))]) for dm_set in (dm.train_set, dm.val_set)]

    a, b, other = tensors(0), tensors(0), tensors(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], other[0])
    assert a[1].shape == (1000, 1, 24, 24)
    pools = _digit_pools(0, (0.2, 0.2))
    sources = {split: {bytes(img.numpy().tobytes()) for img in x} for split, (x, _) in pools.items()}
    assert sources["train"].isdisjoint(sources["val"]) and sources["train"].isdisjoint(sources["test"])
    assert sources["val"].isdisjoint(sources["test"])
    with pytest.raises(ValueError, match="data.clutter"):
        ClutteredDigitsDataModule(clutter=-1)
