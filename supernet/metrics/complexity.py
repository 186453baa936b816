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


@register_counter("mbconv")
def _mbconv(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> Complexity:
    lay = mbconv_layout(space, arch)
    k2 = lay.stem_kernel**2
    macs = lay.stem_size**2 * in_chans * lay.stem_out * k2
    params = in_chans * lay.stem_out * k2 + 2 * lay.stem_out
    for block in (b for stage in lay.stages for b in stage):
        hw_in, hw_out, mid = block.in_size**2, block.out_size**2, block.mid_ch
        if block.expand_conv:
            macs += hw_in * block.in_ch * mid
            params += block.in_ch * mid + 2 * mid
        macs += hw_out * mid * block.kernel**2
        params += mid * block.kernel**2 + 2 * mid
        if block.se_ch:
            macs += 2 * mid * block.se_ch
            params += 2 * mid * block.se_ch + mid + block.se_ch
        macs += hw_out * mid * block.out_ch
        params += mid * block.out_ch + 2 * block.out_ch
        if block.shortcut_conv:
            macs += hw_out * block.in_ch * block.out_ch
            params += block.in_ch * block.out_ch
    macs += lay.final_size**2 * lay.final_in * lay.final_out
    params += lay.final_in * lay.final_out + 2 * lay.final_out
    macs += lay.final_out * lay.head_out + lay.head_out * num_classes
    params += lay.final_out * lay.head_out + lay.head_out * num_classes + num_classes
    return Complexity(int(macs), int(params))


@register_counter("resnet")
def _resnet(space: SearchSpace, arch: Arch, in_chans: int, num_classes: int) -> Complexity:
    lay = resnet_layout(space, arch)
    k2 = lay.stem_kernel**2
    macs = lay.stem_size**2 * in_chans * lay.stem_out * k2
    params = in_chans * lay.stem_out * k2 + 2 * lay.stem_out
    for block in (b for stage in lay.stages for b in stage):
        hw_in, hw_out, mid = block.in_size**2, block.out_size**2, block.mid_ch
        if lay.block == "basic":
            convs = [(hw_out, block.in_ch, mid, 9), (hw_out, mid, block.out_ch, 9)]
        else:
            convs = [(hw_in, block.in_ch, mid, 1), (hw_out, mid, mid, 9), (hw_out, mid, block.out_ch, 1)]
        if block.projection:
            convs.append((hw_out, block.in_ch, block.out_ch, 1))
        for hw, cin, cout, kk in convs:  # every conv is followed by a BN (2 parameters per channel)
            macs += hw * cin * cout * kk
            params += cin * cout * kk + 2 * cout
    macs += lay.final_ch * num_classes
    params += lay.final_ch * num_classes + num_classes
    return Complexity(int(macs), int(params))


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
