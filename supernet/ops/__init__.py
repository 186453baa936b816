"""Elastic layers: own the largest weight, compute with the active slice, export a plain torch layer."""

from supernet.ops.conv_bn_act import ElasticConvBnAct
from supernet.ops.elastic_batchnorm import ElasticBatchNorm2d
from supernet.ops.elastic_conv import ElasticConv2d
from supernet.ops.elastic_linear import ElasticLinear
from supernet.ops.elastic_se import ElasticSqueezeExcite
from supernet.ops.residual import Residual
from supernet.ops.resize import resize_to
from supernet.ops.shortcut import ElasticShortcut

__all__ = [
    "ElasticConv2d", "ElasticBatchNorm2d", "ElasticLinear", "ElasticSqueezeExcite",
    "ElasticConvBnAct", "ElasticShortcut", "Residual", "resize_to",
]
