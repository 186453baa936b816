"""Elastic layers: own the largest weight, compute with the active slice, export a plain torch layer.

Every op and block follows one protocol (``configure`` / ``active_weight`` / ``export``), described
once in ``supernet.ops.protocol``.
"""

from supernet.ops.conv_bn_act import ElasticConvBnAct
from supernet.ops.elastic_attention import ElasticAttention
from supernet.ops.elastic_batchnorm import ElasticBatchNorm2d
from supernet.ops.elastic_conv import ElasticConv2d
from supernet.ops.elastic_depth import ElasticSequential
from supernet.ops.elastic_layernorm import ElasticLayerNorm
from supernet.ops.elastic_linear import ElasticLinear
from supernet.ops.elastic_mlp import ElasticMlp
from supernet.ops.elastic_se import ElasticSqueezeExcite
from supernet.ops.patch_embed import ElasticPatchEmbed
from supernet.ops.pos_embed import ClassTokenPool, ElasticPosEmbed
from supernet.ops.protocol import ElasticBlock, set_active
from supernet.ops.residual import Residual
from supernet.ops.resize import resize_to
from supernet.ops.shortcut import ElasticShortcut

__all__ = [
    "ElasticConv2d",
    "ElasticBatchNorm2d",
    "ElasticLinear",
    "ElasticLayerNorm",
    "ElasticSqueezeExcite",
    "ElasticConvBnAct",
    "ElasticShortcut",
    "ElasticAttention",
    "ElasticMlp",
    "ElasticPatchEmbed",
    "ElasticPosEmbed",
    "ClassTokenPool",
    "ElasticSequential",
    "ElasticBlock",
    "set_active",
    "Residual",
    "resize_to",
]
