"""``ElasticLinear``: a linear layer elastic in input (from the input) and output features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.ops.protocol import set_active
from supernet.ops.slicing import TensorWindows


class ElasticLinear(nn.Module):
    def __init__(self, max_in: int, max_out: int, bias: bool = True):
        super().__init__()
        self.max_in, self.max_out = max_in, max_out
        self.weight = nn.Parameter(torch.empty(max_out, max_in))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.windows = TensorWindows()
        self.configure()

    def configure(self, *, out_features: int | None = None) -> None:
        out_features = self.max_out if out_features is None else out_features
        if not 0 < out_features <= self.max_out:
            raise ValueError(f"out_features must be in 1..{self.max_out}, got {out_features}")
        set_active(self, out_features=out_features)

    def active_weight(self, in_features: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = (0, self.out_features)
        if self.bias is None:
            return *self.windows(self, ("weight", (out, (0, in_features)))), None
        return self.windows(self, ("weight", (out, (0, in_features))), ("bias", (out,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, *self.active_weight(x.shape[-1]))

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Linear:
        weight, bias = self.active_weight(in_features)
        linear = nn.Linear(in_features, weight.shape[0], bias=bias is not None).to(weight.device, weight.dtype)
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
        return linear

    def extra_repr(self) -> str:
        return f"max_in={self.max_in}, max_out={self.max_out}, bias={self.bias is not None}"
