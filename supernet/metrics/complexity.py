"""Analytic multiply-adds and parameter counts of a child, from (space, arch) alone.

Multiply-adds follow the convention of the BigNAS/AttentiveNAS papers: convolution and linear
layers only (no BN, activation, pooling or elementwise ops); for transformers also the two
matmuls of attention (``q @ k^T`` and ``scores @ v``), which ``FlopCounterMode`` counts too (no
layer norm, softmax, GELU, scaling or position-embedding add). Parameters are every parameter of the
extracted child (BN affine included; BN running statistics are buffers, not parameters). Both are
checked in the tests against ``torch.utils.flop_counter.FlopCounterMode`` and ``numel`` on
extracted children. No model is built, so thousands of archs per second can be counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from supernet.space import Arch, SearchSpace
from supernet.space.mbconv import mbconv_layout
from supernet.space.resnet import resnet_layout
from supernet.space.vit import vit_layout


@dataclass(frozen=True)
class Complexity:
    macs: int
    params: int

    @property
    def mmacs(self) -> float:
        return self.macs / 1e6


Counter = Callable[[SearchSpace, Arch, int, int], Complexity]
_COUNTERS: dict[str, Counter] = {}


def register_counter(family: str) -> Callable[[Counter], Counter]:
    def wrap(fn: Counter) -> Counter:
        _COUNTERS[family] = fn
        return fn

    return wrap


def complexity(space: SearchSpace, arch: Arch, *, in_chans: int = 3, num_classes: int = 1000) -> Complexity:
    """Multiply-adds and parameters of ``arch`` (validated against ``space``)."""
    space.validate(arch)
    return _COUNTERS[space.family](space, arch, in_chans, num_classes)


def _conv_bn(hw: int, cin: int, cout: int, kk: int) -> tuple[int, int]:
    """Multiply-adds and parameters of a bias-free conv (``cin`` inputs per output channel, ``kk``
    kernel taps, ``hw`` output positions) followed by a BN (2 affine parameters per channel)."""
    return hw * cin * cout * kk, cin * cout * kk + 2 * cout


def _total(parts) -> Complexity:
    macs, params = (sum(column) for column in zip(*parts))
    return Complexity(int(macs), int(params))


@register_counter("mbconv")
def _mbconv(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> Complexity:
    lay = mbconv_layout(space, arch)
    parts = [_conv_bn(lay.stem_size**2, in_chans, lay.stem_out, lay.stem_kernel**2)]
    for block in (b for stage in lay.stages for b in stage):
        hw_in, hw_out, mid = block.in_size**2, block.out_size**2, block.mid_ch
        if block.expand_conv:
            parts.append(_conv_bn(hw_in, block.in_ch, mid, 1))
        parts.append(_conv_bn(hw_out, 1, mid, block.kernel**2))  # depthwise: one input per channel
        if block.se_ch:  # squeeze and excite: two 1x1 convs with biases on the pooled vector
            parts.append((2 * mid * block.se_ch, 2 * mid * block.se_ch + mid + block.se_ch))
        parts.append(_conv_bn(hw_out, mid, block.out_ch, 1))
        if block.shortcut_conv:  # a bare 1x1 projection
            parts.append((hw_out * block.in_ch * block.out_ch, block.in_ch * block.out_ch))
    parts.append(_conv_bn(lay.final_size**2, lay.final_in, lay.final_out, 1))
    head = lay.final_out * lay.head_out  # 1x1 conv on the pooled vector, no bias
    parts.append((head + lay.head_out * num_classes, head + lay.head_out * num_classes + num_classes))
    return _total(parts)


@register_counter("resnet")
def _resnet(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> Complexity:
    lay = resnet_layout(space, arch)
    parts = [_conv_bn(lay.stem_size**2, in_chans, lay.stem_out, lay.stem_kernel**2)]
    for block in (b for stage in lay.stages for b in stage):
        hw_in, hw_out, mid = block.in_size**2, block.out_size**2, block.mid_ch
        if lay.block == "basic":
            convs = [(hw_out, block.in_ch, mid, 9), (hw_out, mid, block.out_ch, 9)]
        else:
            convs = [(hw_in, block.in_ch, mid, 1), (hw_out, mid, mid, 9), (hw_out, mid, block.out_ch, 1)]
        if block.projection:
            convs.append((hw_out, block.in_ch, block.out_ch, 1))
        parts += [_conv_bn(*conv) for conv in convs]  # every conv is followed by a BN
    parts.append((lay.final_ch * num_classes, lay.final_ch * num_classes + num_classes))
    return _total(parts)


@register_counter("vit")
def _vit(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> Complexity:
    lay = vit_layout(space, arch)
    c, n, p2 = lay.embed_dim, lay.num_tokens, lay.patch_size**2
    qkv_bias = space.settings["qkv_bias"]
    macs = lay.grid**2 * in_chans * c * p2  # patch embedding
    params = in_chans * c * p2 + c + c + n * c  # patch conv (with bias), class token, position embedding
    for layer in lay.layers:
        inner, hidden = layer.qkv_dim, layer.mlp_hidden
        macs += n * c * 3 * inner + 2 * n * n * inner + n * inner * c  # qkv, q @ k^T and scores @ v, proj
        macs += 2 * n * c * hidden  # MLP
        params += 4 * c  # two layer norms
        params += c * 3 * inner + (3 * inner if qkv_bias else 0) + inner * c + c
        params += c * hidden + hidden + hidden * c + c
    macs += c * num_classes  # classifier on the class token only
    params += 2 * c + c * num_classes + num_classes  # final norm, classifier
    return Complexity(int(macs), int(params))
