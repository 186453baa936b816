"""``ViTSupernet``: an AutoFormer-style supernet of pre-norm transformer layers.

Elastic in input resolution (the data pipeline resizes; the position embedding is resampled from
the largest patch grid, see ``supernet.ops.pos_embed``), embedding width (one width for the whole
residual stream), depth (first ``d`` layers) and, per layer, number of heads (fixed head width) and
MLP ratio. Classification reads the class token after the final layer norm (AutoFormer / DeiT).
Widths of each child come from ``supernet.space.vit.vit_layout`` — the same rules the complexity
counter uses.

There is no batch norm: ``bn_eps``, ``bn_momentum`` and ``zero_init_residual`` are accepted so the
training recipe's model kwargs apply to every family, and ignored.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.models.base import Supernet
from supernet.ops.elastic_attention import ElasticAttention
from supernet.ops.elastic_depth import ElasticSequential
from supernet.ops.elastic_layernorm import ElasticLayerNorm
from supernet.ops.elastic_linear import ElasticLinear
from supernet.ops.elastic_mlp import ElasticMlp
from supernet.ops.patch_embed import ElasticPatchEmbed
from supernet.ops.pos_embed import ClassTokenPool, ElasticPosEmbed
from supernet.ops.residual import Residual
from supernet.space import Arch, SearchSpace
from supernet.space.vit import ViTLayerLayout, mlp_hidden, vit_layout


class TransformerLayer(nn.Module):
    """``x + attn(norm(x))`` then ``x + mlp(norm(x))``, each branch with drop-path."""

    def __init__(self, max_embed: int, max_heads: int, head_dim: int, max_hidden: int, qkv_bias: bool,
                 norm_eps: float, drop_path: float):
        super().__init__()
        attn = ElasticAttention(max_embed, max_heads, head_dim, qkv_bias)
        self.attn = Residual(nn.Sequential(ElasticLayerNorm(max_embed, norm_eps), attn), nn.Identity(), drop_path)
        mlp = ElasticMlp(max_embed, max_hidden)
        self.mlp = Residual(nn.Sequential(ElasticLayerNorm(max_embed, norm_eps), mlp), nn.Identity(), drop_path)

    def configure(self, layer: ViTLayerLayout) -> None:
        self.attn.body[1].configure(layer.embed_dim, layer.heads)
        self.mlp.body[1].configure(layer.mlp_hidden, layer.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attn(x))

    def export(self, layer: ViTLayerLayout) -> nn.Sequential:
        c = layer.embed_dim
        return nn.Sequential(
            Residual(nn.Sequential(self.attn.body[0].export(c), self.attn.body[1].export(c)), nn.Identity()),
            Residual(nn.Sequential(self.mlp.body[0].export(c), self.mlp.body[1].export(c)), nn.Identity()),
        )


class ViTSupernet(Supernet):
    stage_container = "layers"  # stage i of the space is transformer layer i

    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int = 3, *, dropout: float = 0.2,
                 drop_path: float = 0.2, bn_eps: float = 1e-5, bn_momentum: float | None = 0.1,
                 zero_init_residual: bool = True):
        super().__init__(space, num_classes, in_chans)
        s = space.settings
        g = space.global_choices
        max_embed, max_depth = max(g["embed_dim"]), max(g["depth"])
        self.patch_size = s["patch_size"]
        self.patch_embed = ElasticPatchEmbed(in_chans, max_embed, self.patch_size)
        self.pos_embed = ElasticPosEmbed(max_embed, max(g["resolution"]) // self.patch_size)
        layers = []
        for i, choices in enumerate(space.stage_choices):
            # Drop-path rate grows linearly from 0 at the first layer to ``drop_path`` at the last (DeiT).
            rate = drop_path * i / max(max_depth - 1, 1)
            layers.append(TransformerLayer(
                max_embed, max(choices["heads"]), s["head_dim"], mlp_hidden(max_embed, max(choices["mlp_ratio"])),
                s["qkv_bias"], s["norm_eps"], rate,
            ))
        self.layers = ElasticSequential(layers)
        self.norm = ElasticLayerNorm(max_embed, s["norm_eps"])
        self.pool = ClassTokenPool()
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(max_embed, num_classes)
        self.set_regularization(False)
        self.set_arch(space.max())

    def no_weight_decay(self) -> set[str]:
        # DeiT/AutoFormer: position embedding and class token are not decayed
        return {"pos_embed.pos_embed", "pos_embed.cls_token"}

    def _configure(self, arch: Arch) -> None:
        self.layout = layout = vit_layout(self.space, arch)
        self.patch_embed.active_out = layout.embed_dim
        self.layers.active_depth = len(layout.layers)
        for module, layer in zip(self.layers, layout.layers):
            module.configure(layer)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Token features after the final norm, ``(B, 1 + patches, embed_dim)``."""
        grid = x.shape[-1] // self.patch_size
        x = self.pos_embed(self.patch_embed(x), grid)
        return self.norm(self.layers(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.pool(self.forward_features(x))))

    def _assemble(self) -> nn.Module:
        lay = self.layout
        c = lay.embed_dim
        return nn.Sequential(
            self.patch_embed.export(self.in_chans), self.pos_embed.export(c, lay.grid),
            *self.layers.export(lay.layers), self.norm.export(c), ClassTokenPool(), self.classifier.export(c),
        )
