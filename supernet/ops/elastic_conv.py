"""``ElasticConv2d``: a conv that owns its largest weight and runs with a leading slice of it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ElasticConv2d(nn.Module):
    """Conv2d elastic in output channels, input channels (read from the input) and kernel size.

    Channels use the leading slice of the weight; a smaller kernel uses the centre crop of the
    largest kernel (BigNAS). ``depthwise=True`` makes a depthwise conv whose channel count follows
    the input. Padding is ``kernel // 2`` ('same' for odd kernels). ``active_weight`` is the single
    slicing rule used by both ``forward`` and ``export``.
    """

    def __init__(
        self,
        max_in: int,
        max_out: int,
        max_kernel: int = 1,
        stride: int = 1,
        depthwise: bool = False,
        bias: bool = False,
    ):
        super().__init__()
        if depthwise and max_in != max_out:
            raise ValueError("a depthwise conv needs max_in == max_out")
        self.max_in, self.max_out, self.max_kernel = max_in, max_out, max_kernel
        self.stride, self.depthwise = stride, depthwise
        self.weight = nn.Parameter(torch.empty(max_out, 1 if depthwise else max_in, max_kernel, max_kernel))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.active_out = max_out
        self.active_kernel = max_kernel

    def active_weight(self, in_channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Views of the weight (and bias) for ``in_channels`` inputs and the active settings."""
        out = in_channels if self.depthwise else self.active_out
        weight = self.weight
        if out != self.max_out:
            weight = weight[:out]
        if not self.depthwise and in_channels != self.max_in:
            weight = weight[:, :in_channels]
        k = self.active_kernel
        if k != self.max_kernel:
            start = (self.max_kernel - k) // 2
            weight = weight[:, :, start : start + k, start : start + k]
        bias = None if self.bias is None else self.bias[:out]
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_channels = x.shape[1]
        weight, bias = self.active_weight(in_channels)
        groups = in_channels if self.depthwise else 1
        return F.conv2d(x, weight, bias, self.stride, self.active_kernel // 2, 1, groups)

    @torch.no_grad()
    def export(self, in_channels: int) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding a copy of the active slice."""
        weight, bias = self.active_weight(in_channels)
        conv = nn.Conv2d(
            in_channels, weight.shape[0], self.active_kernel, self.stride, self.active_kernel // 2,
            groups=in_channels if self.depthwise else 1, bias=bias is not None,
        ).to(weight.device, weight.dtype)
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
        return conv

    def extra_repr(self) -> str:
        kind = "depthwise, " if self.depthwise else ""
        return f"{kind}max_in={self.max_in}, max_out={self.max_out}, max_kernel={self.max_kernel}, stride={self.stride}"
