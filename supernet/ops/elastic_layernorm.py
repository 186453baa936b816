"""``ElasticLayerNorm``: layer norm over the last dimension, with the leading slice of its affine."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.ops.slicing import TensorWindows


class ElasticLayerNorm(nn.Module):
    """Normalises over the input's last dimension (its width is read from the input) and scales
    with the leading entries of the largest weight and bias."""

    def __init__(self, max_features: int, eps: float = 1e-6):
        super().__init__()
        self.max_features, self.eps = max_features, eps
        self.weight = nn.Parameter(torch.ones(max_features))
        self.bias = nn.Parameter(torch.zeros(max_features))
        self.windows = TensorWindows()

    def active_weight(self, in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
        window = ((0, in_features),)
        return self.windows(self, ("weight", window), ("bias", window))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        return F.layer_norm(x, (c,), *self.active_weight(c), self.eps)

    @torch.no_grad()
    def export(self, in_features: int) -> nn.LayerNorm:
        weight, bias = self.active_weight(in_features)
        norm = nn.LayerNorm(in_features, eps=self.eps).to(weight.device, weight.dtype)
        norm.weight.copy_(weight)
        norm.bias.copy_(bias)
        return norm

    def extra_repr(self) -> str:
        return f"max_features={self.max_features}, eps={self.eps}"
