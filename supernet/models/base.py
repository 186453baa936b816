"""``Supernet``: what every supernet family offers (``set_arch``, ``extract``, regularisation switch)."""

from __future__ import annotations

import contextlib
import re

import torch
import torch.fx
from timm.layers import DropPath
from torch import nn

from supernet.metrics.complexity import Complexity, complexity
from supernet.ops import set_active
from supernet.space import Arch, SearchSpace


def drop_path_rates(drop_path: float, num_blocks: int) -> list[float]:
    """Stochastic-depth rate of each block of the largest child, in order: linear from 0 at the
    first block to ``drop_path`` at the last (DeiT, timm). Same rule as timm's
    ``calculate_drop_path_rates``, in Python floats: timm's float32 ``linspace`` turns 0.2 into
    0.2000000030."""
    return [drop_path * i / max(num_blocks - 1, 1) for i in range(num_blocks)]


class Supernet(nn.Module):
    """Base class. Subclasses build elastic layers in ``__init__`` (sized by the largest child) and
    implement ``_configure`` (activate a child: ``configure`` every op and block) and ``_assemble``
    (plain torch layers of the active child: their ``export``); see ``supernet.ops.protocol`` and
    ``docs/adding_a_family.md``."""

    # The ModuleList whose i-th entry holds the weights of the space's stage i (PA&DA credits a
    # stage's gradient to that stage's choices); other parameters belong to no stage.
    stage_container = "stages"

    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int):
        super().__init__()
        self.space, self.num_classes, self.in_chans = space, num_classes, in_chans
        self.arch: Arch = space.max()

    # -- children -----------------------------------------------------------------------------
    def set_arch(self, arch: Arch | str) -> Arch:
        """Activate ``arch`` (validated against the space). The input resolution is the caller's job."""
        arch = self.space.resolve(arch)
        self._configure(arch)
        set_active(self, arch=arch)
        return arch

    def _configure(self, arch: Arch) -> None:
        raise NotImplementedError

    def _assemble(self) -> nn.Module:
        raise NotImplementedError

    @torch.no_grad()
    def extract(self, arch: Arch | str | None = None) -> torch.fx.GraphModule:
        """The child ``arch`` (default: the active one) as a standalone module.

        It holds copies of the sliced weights and BN statistics, in the supernet's train/eval
        mode. It is traced to a ``torch.fx.GraphModule`` whose submodules are plain ``torch.nn``
        layers, so running it needs neither this package nor timm.
        """
        if arch is not None:
            self.set_arch(arch)
        child = self._assemble().train(self.training)
        traced = torch.fx.symbolic_trace(child)
        traced.meta["arch"] = str(self.arch)
        return traced.train(self.training)

    def complexity(self, arch: Arch | str | None = None) -> Complexity:
        arch = self.arch if arch is None else self.space.resolve(arch)
        return complexity(self.space, arch, in_chans=self.in_chans, num_classes=self.num_classes)

    def parameter_stages(self) -> dict[nn.Parameter, int | None]:
        """The stage index of every parameter (``None``: stem, head and other shared weights)."""
        pattern = re.compile(rf"(?:^|\.){re.escape(self.stage_container)}\.(\d+)\.")
        stages = {}
        for name, param in self.named_parameters():
            match = pattern.search(name)
            stages[param] = int(match.group(1)) if match else None
        return stages

    def no_weight_decay(self) -> set[str]:
        """Names of parameters kept out of weight decay besides biases and norm affines (timm's
        hook of the same name); the optimizer's parameter groups read it."""
        return set()

    # -- regularisation (BigNAS: dropout / drop-path on the largest child only) -----------------
    def _regularizers(self) -> list[tuple[nn.Module, str, float]]:
        # Found once and kept (in __dict__, so not a submodule; deepcopy maps it to the copies): a
        # step switches regularisation twice per child, and walking every module each time was a
        # tenth of a small step's host time (benchmarks/host_overhead.py). A module's configured
        # rate is kept on the module when first seen (a model containing supernets, such as a
        # few-shot collection, finds them already switched off); modules configured at rate 0 are
        # left out, as switching them changes nothing.
        found = self.__dict__.get("_regularizer_list")
        if found is None:
            found = []
            for module in self.modules():
                if isinstance(module, (DropPath, nn.Dropout)):
                    attr = "drop_prob" if isinstance(module, DropPath) else "p"
                    if not hasattr(module, "_configured_rate"):
                        module._configured_rate = getattr(module, attr)
                    if module._configured_rate > 0:
                        found.append((module, attr, module._configured_rate))
            self.__dict__["_regularizer_list"] = found
        return found

    def set_regularization(self, enabled: bool) -> None:
        """Switch dropout and drop-path between their configured rates and zero."""
        for module, attr, rate in self._regularizers():
            setattr(module, attr, rate if enabled else 0.0)

    @contextlib.contextmanager
    def regularization(self, enabled: bool):
        self.set_regularization(enabled)
        try:
            yield self
        finally:
            self.set_regularization(False)
