"""``ElasticConv2d``: a conv that owns its largest weight and runs with a leading slice of it."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from supernet.ops.protocol import set_active
from supernet.ops.slicing import TensorWindows


class ElasticConv2d(nn.Module):
    """Conv2d elastic in output channels, input channels (read from the input) and kernel size.

    Channels use the leading slice of the weight; a smaller kernel uses the centre crop of the
    largest kernel (BigNAS). ``depthwise=True`` makes a depthwise conv whose channel count follows
    the input. ``padding="same"`` pads ``kernel_size // 2`` on each side (the output is
    ``ceil(size / stride)`` for odd kernels), ``"valid"`` does not pad (patch embedding).
    """

    def __init__(
        self,
        max_in: int,
        max_out: int,
        max_kernel: int = 1,
        stride: int = 1,
        depthwise: bool = False,
        bias: bool = False,
        padding: Literal["same", "valid"] = "same",
    ):
        super().__init__()
        if depthwise and max_in != max_out:
            raise ValueError("a depthwise conv needs max_in == max_out")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.max_in, self.max_out, self.max_kernel = max_in, max_out, max_kernel
        self.stride, self.depthwise, self.padding = stride, depthwise, padding
        self.weight = nn.Parameter(torch.empty(max_out, 1 if depthwise else max_in, max_kernel, max_kernel))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.windows = TensorWindows()
        self.configure()

    def configure(self, *, out_channels: int | None = None, kernel_size: int | None = None) -> None:
        """Activate ``out_channels`` outputs (not for a depthwise conv: its outputs are its inputs)
        and the centre ``kernel_size`` x ``kernel_size`` taps."""
        if out_channels is not None and self.depthwise:
            raise ValueError("a depthwise conv has as many outputs as inputs: configure its kernel_size only")
        out_channels = self.max_out if out_channels is None else out_channels
        kernel_size = self.max_kernel if kernel_size is None else kernel_size
        if not 0 < out_channels <= self.max_out:
            raise ValueError(f"out_channels must be in 1..{self.max_out}, got {out_channels}")
        if not 0 < kernel_size <= self.max_kernel or (self.max_kernel - kernel_size) % 2:
            raise ValueError(
                f"kernel_size {kernel_size} is not a centre crop of the {self.max_kernel}x{self.max_kernel} kernel"
            )
        set_active(self, out_channels=out_channels, kernel_size=kernel_size)

    def active_weight(self, in_channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Views of the weight (and bias) for ``in_channels`` inputs and the active setting."""
        out = in_channels if self.depthwise else self.out_channels
        start = (self.max_kernel - self.kernel_size) // 2
        crop = (start, start + self.kernel_size)
        weight = ("weight", ((0, out), (0, 1 if self.depthwise else in_channels), crop, crop))
        if self.bias is None:
            return *self.windows(self, weight), None
        return self.windows(self, weight, ("bias", ((0, out),)))

    def _pad(self) -> int:
        return self.kernel_size // 2 if self.padding == "same" else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_channels = x.shape[1]
        weight, bias = self.active_weight(in_channels)
        groups = in_channels if self.depthwise else 1
        return F.conv2d(x, weight, bias, self.stride, self._pad(), 1, groups)

    @torch.no_grad()
    def export(self, in_features: int) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding a copy of the active slice."""
        weight, bias = self.active_weight(in_features)
        conv = nn.Conv2d(
            in_features,
            weight.shape[0],
            self.kernel_size,
            self.stride,
            self._pad(),
            groups=in_features if self.depthwise else 1,
            bias=bias is not None,
        ).to(weight.device, weight.dtype)
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
        return conv

    def extra_repr(self) -> str:
        kind = "depthwise, " if self.depthwise else ""
        return (
            f"{kind}max_in={self.max_in}, max_out={self.max_out}, max_kernel={self.max_kernel}, "
            f"stride={self.stride}, padding={self.padding}"
        )
