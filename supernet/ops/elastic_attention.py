"""Multi-head self-attention elastic in embedding width and number of heads (head width fixed).

The qkv projection's rows are laid out head by head — ``[q_0 k_0 v_0 | q_1 k_1 v_1 | ...]``, each
``head_dim`` rows — so the first ``h`` heads are the *leading* ``3 * h * head_dim`` rows: a view of
the largest weight, no gather, and the same rows in the supernet and in the exported child. The
output projection reads the leading ``h * head_dim`` columns (heads concatenated in order).

Scores use explicit matmuls rather than ``F.scaled_dot_product_attention``: FLOP counters (torch's
``FlopCounterMode`` on CPU among them) do not count the fused kernel, and the analytic count must
match what they measure. ``MultiHeadAttention`` is the plain module a child exports to; both run
``attend``.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.ops.elastic_linear import ElasticLinear
from supernet.ops.protocol import set_active


def attend(qkv: torch.Tensor, num_heads: int, head_dim: int) -> torch.Tensor:
    """Attention of head-major packed ``qkv`` (B, N, heads*3*head_dim) -> (B, N, heads*head_dim).

    Written with plain tensor methods (no shape unpacking) so ``torch.fx`` can trace it.
    """
    b, n = qkv.shape[0], qkv.shape[1]
    qkv = qkv.reshape(b, n, num_heads, 3, head_dim).permute(3, 0, 2, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = (q * head_dim**-0.5) @ k.transpose(-2, -1)
    out = scores.softmax(dim=-1) @ v
    return out.transpose(1, 2).reshape(b, n, num_heads * head_dim)


class MultiHeadAttention(nn.Module):
    """Plain attention over ``nn.Linear`` projections (what ``ElasticAttention.export`` returns)."""

    def __init__(self, qkv: nn.Linear, proj: nn.Linear, num_heads: int, head_dim: int):
        super().__init__()
        self.qkv, self.proj = qkv, proj
        self.num_heads, self.head_dim = num_heads, head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(attend(self.qkv(x), self.num_heads, self.head_dim))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}"


class ElasticAttention(nn.Module):
    def __init__(self, max_embed: int, max_heads: int, head_dim: int, qkv_bias: bool = True):
        super().__init__()
        self.max_heads, self.head_dim = max_heads, head_dim
        self.qkv = ElasticLinear(max_embed, 3 * max_heads * head_dim, bias=qkv_bias)
        self.proj = ElasticLinear(max_heads * head_dim, max_embed)
        self.configure()

    def configure(self, *, heads: int | None = None, embed_dim: int | None = None) -> None:
        """Activate ``heads`` heads writing back ``embed_dim`` features (inputs give the width read)."""
        heads = self.max_heads if heads is None else heads
        if not 0 < heads <= self.max_heads:
            raise ValueError(f"heads must be in 1..{self.max_heads}, got {heads}")
        set_active(self, heads=heads)
        self.qkv.configure(out_features=3 * heads * self.head_dim)
        self.proj.configure(out_features=embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(attend(self.qkv(x), self.heads, self.head_dim))

    @torch.no_grad()
    def export(self, in_features: int) -> MultiHeadAttention:
        return MultiHeadAttention(
            self.qkv.export(in_features), self.proj.export(self.heads * self.head_dim), self.heads, self.head_dim
        )

    def extra_repr(self) -> str:
        return f"max_heads={self.max_heads}, head_dim={self.head_dim}"
