"""``ElasticMlp``: the transformer MLP (linear, GELU, linear), elastic in hidden and output width."""

from __future__ import annotations

import torch
from torch import nn

from supernet.ops.elastic_linear import ElasticLinear


class ElasticMlp(nn.Module):
    def __init__(self, max_in: int, max_hidden: int, max_out: int | None = None):
        super().__init__()
        self.fc1 = ElasticLinear(max_in, max_hidden)
        self.act = nn.GELU()
        self.fc2 = ElasticLinear(max_hidden, max_out or max_in)

    def configure(self, *, hidden_features: int | None = None, out_features: int | None = None) -> None:
        self.fc1.configure(out_features=hidden_features)
        self.fc2.configure(out_features=out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        fc1 = self.fc1.export(in_features)
        return nn.Sequential(fc1, nn.GELU(), self.fc2.export(fc1.out_features))
