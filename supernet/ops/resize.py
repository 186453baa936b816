"""Resize a batch to a child's input resolution (elastic resolution lives in the data path)."""

import torch
import torch.nn.functional as F


def resize_to(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize a batch of images to ``resolution`` (no-op when it already has that size)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
