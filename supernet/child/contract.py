"""A child's input contract: what a shipped child takes, and how to make it from raw images.

An artifact's ``arch.yaml`` and ``metrics.json`` hold it under ``input``::

    size: 20              # the child takes float32 N x channels x size x size (NCHW); model.pt2 only this size
    channels: 1
    dtype: float32
    layout: NCHW
    data: supernet.data.DigitsDataModule      # whose evaluation transform the steps are
    raw: 8x8 grayscale arrays, values 0..16 (scikit-learn's digits)
    steps:                # from a raw image to the child's input, in order (``preprocess`` applies them)
      - {op: divide, by: 16}                                       # value scaling
      - {op: normalize, mean: [0.30], std: [0.37]}                 # per channel, after scaling
      - {op: resize, size: 20, interpolation: bilinear, antialias: true, align_corners: false}

Ops: ``resize_shorter`` (the shorter side to ``size``, PIL bilinear: ImageNet-style evaluation),
``center_crop`` (``size`` x ``size``), ``divide`` (values by ``by``, giving a float tensor),
``normalize`` (``(x - mean) / std`` per channel), ``resize`` (``supernet.ops.resize_to``: every
image to the child's size, as the training and evaluation data path does). ``steps`` is null when
the data module is not one this package knows how to describe.

The data modules do not expose their normalisation as attributes, so the contract is derived here
from each module's class and settings (its split for the digits' statistics, the published
statistics for CIFAR and ImageNet), and checked against the modules' own tensors by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.ops import resize_to


def _resize(size: int) -> dict[str, Any]:
    # supernet.ops.resize_to, which every child's input goes through in training and evaluation
    return {"op": "resize", "size": int(size), "interpolation": "bilinear", "antialias": True, "align_corners": False}


def _digits_statistics(data) -> tuple[float, float]:
    """Mean and std of the digits' training split (in [0, 1]), as ``DigitsDataModule.setup``
    computes them (it keeps them in a local variable)."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(data.split_seed))
    n_val, n_test = int(len(x) * data.val_fraction), int(len(x) * data.test_fraction)
    train = x[perm[n_val + n_test :]]
    return float(train.mean()), float(train.std())


def _raw_and_steps(data: Any, size: int) -> tuple[str | None, list[dict[str, Any]] | None]:
    """What a raw image of ``data``'s kind is, and the steps from it to the child's input."""
    # imported here: reading an artifact's contract (``preprocess``) needs no data module
    from supernet.data import CIFARDataModule, DigitsDataModule, ImageFolderDataModule, SyntheticDataModule
    from supernet.data.vision import CIFAR_STATS, IMAGENET_STATS

    if isinstance(data, DigitsDataModule):
        mean, std = _digits_statistics(data)
        steps = [{"op": "divide", "by": 16}, {"op": "normalize", "mean": [mean], "std": [std]}]
        return "8x8 grayscale arrays, values 0..16 (scikit-learn's digits)", [*steps, _resize(size)]
    if isinstance(data, CIFARDataModule):
        mean, std = CIFAR_STATS[data.num_classes]
        steps = [{"op": "divide", "by": 255}, {"op": "normalize", "mean": list(mean), "std": list(std)}]
        return "32x32 RGB images (PIL, or H x W x 3 uint8 arrays)", [*steps, _resize(size)]
    if isinstance(data, ImageFolderDataModule):
        mean, std = IMAGENET_STATS
        crop = data.image_size
        steps = [
            {"op": "resize_shorter", "size": int(crop / 0.875), "interpolation": "bilinear"},
            {"op": "center_crop", "size": crop},
            {"op": "divide", "by": 255},
            {"op": "normalize", "mean": list(mean), "std": list(std)},
        ]
        return "RGB images of any size (PIL, or H x W x 3 uint8 arrays)", [*steps, _resize(size)]
    if isinstance(data, SyntheticDataModule):
        return "float arrays (H x W x C) drawn as the synthetic data is: used as they are", [_resize(size)]
    return None, None


def input_contract(data: Any, size: int, channels: int, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """The input contract of a child of input ``size`` trained on the data module ``data``."""
    raw, steps = _raw_and_steps(data, size)
    return {
        "size": int(size),
        "channels": int(channels),
        "dtype": str(dtype).removeprefix("torch."),
        "layout": "NCHW",
        "data": f"{type(data).__module__}.{type(data).__qualname__}",
        "raw": raw,
        "steps": steps,
    }


def read_contract(artifact: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    """The input contract of an artifact folder (or its arch.yaml), or the contract itself."""
    if isinstance(artifact, Mapping):
        return artifact
    from supernet.child.artifact import read_document

    doc = read_document(artifact)
    if not isinstance(doc.get("input"), Mapping):
        raise ValueError(f"{artifact} records no input contract (extracted before supernet recorded one)")
    return doc["input"]


def _images(images: Any, channels: int) -> list[Any]:
    """One raw image per item: PIL images as they are, arrays as H x W (x C)."""
    from PIL import Image

    if isinstance(images, Image.Image):
        return [images]
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        return [image for item in images for image in _images(item, channels)]
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    one = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == channels)
    if one:
        return [array]
    if array.ndim in (3, 4):
        return list(array)
    raise ValueError(
        f"cannot read images of shape {array.shape}: give H x W or H x W x C arrays (with a leading batch "
        "axis for several), PIL images, or a list of them"
    )


def _pil(image: Any, channels: int):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB" if channels == 3 else "L")
    if image.dtype != np.uint8:
        raise ValueError(f"this child's first steps work on 8-bit images: got an array of {image.dtype}")
    return Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image)


def _tensor(image: Any, channels: int) -> torch.Tensor:
    """C x H x W, values as they are (``divide`` scales them)."""
    if not isinstance(image, torch.Tensor):
        image = torch.from_numpy(np.array(image))  # a PIL image or an array, copied
        image = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1)
    if image.shape[0] != channels:
        raise ValueError(f"the child takes {channels} channel(s), an image has {image.shape[0]}")
    return image


def _apply(image: Any, steps: Sequence[Mapping[str, Any]], channels: int, dtype: torch.dtype) -> torch.Tensor:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    for step in steps:
        op = step["op"]
        if op == "resize_shorter":
            image = TF.resize(_pil(image, channels), step["size"], interpolation=InterpolationMode.BILINEAR)
        elif op == "center_crop":
            image = TF.center_crop(_pil(image, channels), step["size"])
        elif op == "divide":
            image = _tensor(image, channels).to(dtype).div(step["by"])
        elif op == "normalize":
            mean = torch.tensor(step["mean"], dtype=dtype)[:, None, None]
            std = torch.tensor(step["std"], dtype=dtype)[:, None, None]
            image = (_tensor(image, channels).to(dtype) - mean) / std
        elif op == "resize":
            image = resize_to(_tensor(image, channels).to(dtype)[None], step["size"])[0]
        else:
            raise ValueError(f"unknown preprocessing step {op!r} in the input contract")
    return _tensor(image, channels).to(dtype)


def preprocess(images: Any, artifact: str | Path | Mapping[str, Any]) -> torch.Tensor:
    """Raw images -> the tensor a shipped child takes (N x C x size x size), by the artifact's
    input contract: the evaluation transform of the data the supernet was trained on, then the
    resize to the child's input size.

    ``images``: a PIL image, an H x W (grayscale) or H x W x C array or tensor, any of those with a
    leading batch axis, or a list of them. ``artifact``: the artifact folder, its arch.yaml, or
    its contract (``arch.yaml``'s ``input``)."""
    contract = read_contract(artifact)
    steps, channels = contract.get("steps"), int(contract["channels"])
    if steps is None:
        raise ValueError(
            f"the input contract does not describe the preprocessing of {contract.get('data')}: feed "
            f"N x {channels} x {contract['size']} x {contract['size']} tensors prepared as that data module does"
        )
    dtype = getattr(torch, contract.get("dtype", "float32"))
    return torch.stack([_apply(image, steps, channels, dtype) for image in _images(images, channels)])
