"""Shape and cost rules shared by the convolutional families (one home for each formula)."""

from __future__ import annotations

from collections.abc import Iterable

from timm.layers import make_divisible


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """Output height (= width) of a conv or pool padded by ``kernel // 2`` on each side."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def expanded_channels(channels: int, ratio: float, divisor: int) -> int:
    """The inner width of a block: ``channels * ratio`` rounded to a multiple of ``divisor``."""
    return make_divisible(round(channels * ratio), divisor)


def conv_bn_cost(positions: int, in_per_group: int, out_channels: int, taps: int) -> tuple[int, int]:
    """Multiply-adds and parameters of a bias-free conv (``in_per_group`` inputs per output channel,
    ``taps`` kernel taps, ``positions`` output positions) followed by a BN (2 affine parameters per
    channel)."""
    params = in_per_group * out_channels * taps
    return positions * params, params + 2 * out_channels


def total_cost(parts: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Sum of ``(multiply-adds, parameters)`` pairs."""
    macs = params = 0
    for part_macs, part_params in parts:
        macs, params = macs + part_macs, params + part_params
    return macs, params
