"""The input contract of every data module this package describes: ``preprocess`` on raw images
gives exactly the evaluation tensors of the data module (then resized as the data path does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cifar_folder, image_folder

from supernet.child import input_contract, preprocess
from supernet.data import CIFARDataModule, ImageFolderDataModule, SyntheticDataModule
from supernet.ops import resize_to


def test_cifar_contract_reproduces_the_data_module(tmp_path):
    from supernet.data.vision import read_cifar

    root = cifar_folder(tmp_path)
    data = CIFARDataModule(root=str(root), val_size=10, batch_size=8)
    data.setup("fit")
    contract = input_contract(data, 24, 3)
    assert [s["op"] for s in contract["steps"]] == ["divide", "normalize", "resize"]
    images, _ = read_cifar(root, 10, train=False)  # raw: N x 32 x 32 x 3 uint8
    expected = resize_to(torch.stack([data.test_set[i][0] for i in range(len(images))]), 24)
    assert torch.equal(preprocess(images, contract), expected)
    from PIL import Image

    assert torch.equal(preprocess(Image.fromarray(images[0]), contract), expected[:1])


def test_image_folder_contract_reproduces_the_data_module(tmp_path):
    from PIL import Image

    root = image_folder(tmp_path, size=20)
    data = ImageFolderDataModule(root=str(root), image_size=16, val_size=4, batch_size=4)
    data.setup("fit")
    contract = input_contract(data, 12, 3)
    assert [s["op"] for s in contract["steps"]] == ["resize_shorter", "center_crop", "divide", "normalize", "resize"]
    files = [path for path, _ in data.test_set.dataset.samples]
    expected = resize_to(torch.stack([data.test_set[i][0] for i in range(len(files))]), 12)
    assert torch.equal(preprocess([Image.open(f) for f in files], contract), expected)
    arrays = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])  # N x H x W x 3 uint8
    assert torch.equal(preprocess(arrays, contract), expected)
    with pytest.raises(ValueError, match="8-bit images"):
        preprocess(arrays.astype("float32"), contract)


def test_synthetic_data_is_only_resized_and_unknown_data_is_named():
    contract = input_contract(SyntheticDataModule(image_size=32, in_chans=3), 16, 3)
    x = torch.randn(2, 32, 32, 3)
    assert torch.equal(preprocess(x, contract), resize_to(x.permute(0, 3, 1, 2), 16))
    unknown = input_contract(object(), 16, 3)
    assert unknown["steps"] is None and unknown["size"] == 16 and unknown["data"] == "builtins.object"
    with pytest.raises(ValueError, match="does not describe the preprocessing of builtins.object: feed N x 3 x 16"):
        preprocess(x, unknown)
