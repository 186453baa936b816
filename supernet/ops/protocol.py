"""The one protocol of every elastic op and block (documented here, once).

An elastic module owns the weights of its largest setting and computes with a slice of them: the
leading channels / features / heads, and the centre crop of a kernel.

``configure(**setting)``
    The only way to change what a module computes. The keywords are the module's own
    (``ElasticConv2d.configure(out_channels=, kernel_size=)``, ``ElasticAttention.configure(heads=,
    embed_dim=)``, ...); a width or kernel size left out means the largest, so the active setting
    never depends on earlier calls. Input widths are never configured: they are read from the input
    tensor (channels ``x.shape[1]``, features ``x.shape[-1]``), so a module whose every width
    follows its input (batch norm, layer norm, the channels of a depthwise conv) has no
    ``configure``. ``forward`` never changes the setting. ``configure`` stores its setting with
    ``set_active`` (a step configures hundreds of modules).

``active_weight(in_features)``
    Views of the largest weights for an input of ``in_features`` under the active setting, taken
    through the module's ``TensorWindows`` (``supernet.ops.slicing``: cut once and kept, no copy;
    the gradient goes into the window of the parameter's ``.grad`` in place). ``forward`` and
    ``export`` both call it, so a child computes exactly what the supernet computes.

``export(in_features: int) -> nn.Module``
    Plain ``torch.nn`` layers holding copies of the active slices, for an input of ``in_features``
    channels (features for token inputs). The same signature for every op and every block.

Blocks (``ElasticBlock``: one inverted residual, residual block or transformer layer of a family)
follow the same protocol and also state their active output width, ``out_features`` (set by
``configure``), so that the elastic-depth container ``ElasticSequential`` can export a stage by
handing each block the width the previous one produces. A family model configures its blocks only
through ``configure`` and exports them only through ``export``; what a block is made of stays
inside the block.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class ElasticBlock(Protocol):
    out_features: int  # the active output width, set by ``configure``

    def configure(self, **setting: Any) -> None: ...

    def export(self, in_features: int) -> nn.Module: ...


def set_active(module: nn.Module, **setting: Any) -> None:
    """Store ``setting`` as attributes of ``module``: how ``configure`` keeps the setting it is
    given. Plain Python values only (ints, bools, an ``Arch``, a layout), never tensors,
    parameters or modules, which would not be registered (no ``state_dict`` entry, not moved by
    ``.to()``). Written into the instance dict: ``nn.Module.__setattr__`` tests every value against
    Parameter, Buffer and Module through Python-level isinstance hooks, and those tests were 60% of
    ``Supernet.set_arch`` (about 200 writes per MobileNet child; ``benchmarks/host_overhead.py``)."""
    module.__dict__.update(setting)
