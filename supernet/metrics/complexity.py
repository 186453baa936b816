"""Analytic multiply-adds and parameter counts of a child, from (space, arch) alone.

Multiply-adds follow the convention of the BigNAS/AttentiveNAS papers: convolution and linear
layers only (no BN, activation, pooling or elementwise ops); for transformers also the two
matmuls of attention (``q @ k^T`` and ``scores @ v``), which ``FlopCounterMode`` counts too (no
layer norm, softmax, GELU, scaling or position-embedding add). Parameters are every parameter of the
extracted child (BN affine included; BN running statistics are buffers, not parameters). Both are
checked in the tests against ``torch.utils.flop_counter.FlopCounterMode`` and ``numel`` on
extracted children. No model is built, so thousands of archs per second can be counted.

Each family's counter sits next to its geometry in ``supernet.space.<family>`` and is registered
with the family (``supernet.space.family``).
"""

from __future__ import annotations

from dataclasses import dataclass

from supernet.space import Arch, SearchSpace, get_family


@dataclass(frozen=True)
class Complexity:
    macs: int
    params: int

    @property
    def mmacs(self) -> float:
        return self.macs / 1e6


def complexity(space: SearchSpace, arch: Arch | str, *, in_chans: int = 3, num_classes: int = 1000) -> Complexity:
    """Multiply-adds and parameters of ``arch`` (validated against ``space``)."""
    count = get_family(space.family).counter
    macs, params = count(space, space.validate(arch), in_chans, num_classes)
    return Complexity(int(macs), int(params))
