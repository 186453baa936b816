"""``ViTSupernet``: an AutoFormer-style supernet of pre-norm transformer layers.

Elastic in input resolution (the data pipeline resizes; the position embedding is resampled from
the largest patch grid, see ``supernet.ops.pos_embed``), embedding width (one width for the whole
residual stream), depth (first ``d`` layers) and, per layer, number of heads (fixed head width) and
MLP ratio. Classification reads the class token after the final layer norm (AutoFormer / DeiT).
Widths come from ``supernet.space.vit.vit_layout`` — the same rules the complexity counter uses:
the layout of the largest child sizes every weight, the layout of a child configures the layers.
There is no batch norm, so the model takes no BN options.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.models.base import Supernet, drop_path_rates
from supernet.ops import (
    ClassTokenPool,
    ElasticAttention,
    ElasticLayerNorm,
    ElasticLinear,
    ElasticMlp,
    ElasticPatchEmbed,
    ElasticPosEmbed,
    ElasticSequential,
    Residual,
    set_active,
)
from supernet.space import Arch, SearchSpace
from supernet.space.vit import ViTLayerLayout, vit_layout


class TransformerLayer(nn.Module):
    """``x + attn(norm(x))`` then ``x + mlp(norm(x))``, each branch with drop-path."""

    def __init__(self, largest: ViTLayerLayout, qkv_bias: bool, norm_eps: float, drop_path: float):
        super().__init__()
        embed = largest.embed_dim
        attn = ElasticAttention(embed, largest.heads, largest.head_dim, qkv_bias)
        self.attn = Residual(nn.Sequential(ElasticLayerNorm(embed, norm_eps), attn), nn.Identity(), drop_path)
        mlp = ElasticMlp(embed, largest.mlp_hidden)
        self.mlp = Residual(nn.Sequential(ElasticLayerNorm(embed, norm_eps), mlp), nn.Identity(), drop_path)

    def configure(self, *, embed_dim: int, heads: int, mlp_hidden: int) -> None:
        self.attn.body[1].configure(heads=heads, embed_dim=embed_dim)
        self.mlp.body[1].configure(hidden_features=mlp_hidden, out_features=embed_dim)
        set_active(self, out_features=embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attn(x))

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Sequential:
        c = in_features  # the residual stream keeps its width
        return nn.Sequential(
            *(
                Residual(nn.Sequential(branch.body[0].export(c), branch.body[1].export(c)), nn.Identity())
                for branch in (self.attn, self.mlp)
            )
        )


class ViTSupernet(Supernet):
    stage_container = "layers"  # stage i of the space is transformer layer i

    def __init__(
        self, space: SearchSpace, num_classes: int, in_chans: int = 3, *, dropout: float = 0.2, drop_path: float = 0.2
    ):
        super().__init__(space, num_classes, in_chans)
        s = space.settings
        largest = vit_layout(space, space.max())
        self.patch_embed = ElasticPatchEmbed(in_chans, largest.embed_dim, largest.patch_size)
        self.pos_embed = ElasticPosEmbed(largest.embed_dim, largest.grid)
        rates = drop_path_rates(drop_path, len(largest.layers))
        self.layers = ElasticSequential(
            TransformerLayer(layer, s["qkv_bias"], s["norm_eps"], rate) for layer, rate in zip(largest.layers, rates)
        )
        self.norm = ElasticLayerNorm(largest.embed_dim, s["norm_eps"])
        self.pool = ClassTokenPool()
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(largest.embed_dim, num_classes)
        self.set_regularization(False)
        self.set_arch(space.max())

    def no_weight_decay(self) -> set[str]:
        # DeiT/AutoFormer: position embedding and class token are not decayed
        return {"pos_embed.pos_embed", "pos_embed.cls_token"}

    def _configure(self, arch: Arch) -> None:
        layout = vit_layout(self.space, arch)
        set_active(self, layout=layout)
        self.patch_embed.configure(embed_dim=layout.embed_dim)
        self.pos_embed.configure(grid=layout.grid)
        self.layers.configure(depth=len(layout.layers))
        for module, layer in zip(self.layers, layout.layers):
            module.configure(embed_dim=layer.embed_dim, heads=layer.heads, mlp_hidden=layer.mlp_hidden)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Token features after the final norm, ``(B, 1 + patches, embed_dim)``."""
        return self.norm(self.layers(self.pos_embed(self.patch_embed(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.pool(self.forward_features(x))))

    def _assemble(self) -> nn.Module:
        c = self.layout.embed_dim
        return nn.Sequential(
            self.patch_embed.export(self.in_chans),
            self.pos_embed.export(c),
            *self.layers.export(c),
            self.norm.export(c),
            ClassTokenPool(),
            self.classifier.export(c),
        )
