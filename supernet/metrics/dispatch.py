"""Host overhead of the supernet, as a count: the aten operators one sandwich step dispatches,
against the same children run as static modules (``Supernet.extract``) through the same step.

On a GPU a small child's step is bound by the host (Python and one kernel launch per dispatched
operator), so the operator count is the part of the elastic overhead that does not depend on the
machine: a test can bound it, where a time could not be asserted.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from supernet.models import Supernet, build
from supernet.space import Arch, load_space


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_dispatched_ops(fn: Callable[[], object]) -> collections.Counter[str]:
    """The aten operators (by name) that ``fn()`` dispatches, forward and backward alike (the
    autograd engine runs the backward in this thread on the CPU, so the mode sees it)."""
    with _OpCounter() as counter:
        fn()
    return counter.counts


class StaticChildren(nn.Module):
    """The children ``archs`` of ``supernet`` extracted as plain modules, behind the interface the
    sandwich step drives (``set_arch``, ``regularization``, ``zero_grad``, ``parameters``): the
    step then runs exactly the work of training those children as static networks, which is what
    the supernet's step is compared with.

    Dropout and drop-path are not switched (an extracted child has none): compare with a supernet
    built without them, or the teacher's regularisation counts as overhead.
    """

    def __init__(self, supernet: Supernet, archs: Sequence[Arch]):
        super().__init__()
        unique = [str(arch) for arch in dict.fromkeys(archs)]
        self.static = nn.ModuleList(supernet.extract(arch).train(supernet.training) for arch in unique)
        self._position = {arch: i for i, arch in enumerate(unique)}
        self.active: nn.Module = self.static[0]

    def set_arch(self, arch: Arch | str) -> None:
        self.active = self.static[self._position[str(arch)]]

    def regularization(self, enabled: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.active(x)


def sandwich_vs_static(
    space_name: str, batch: int = 2, resolution: int | None = None, device: str | torch.device = "cpu"
) -> tuple[dict[str, Callable[[], object]], int]:
    """One sandwich step (max, min and two random children of ``space_name``, distillation, the
    gradient sync) on the supernet and on ``StaticChildren`` of the same children, each already
    run once (the first step cuts the supernet's windows, once per child shape in a run), and the
    input size. Built without dropout and drop-path, on ``device``; grayscale input for ``tiny``
    (a digits space).
    """
    # imported here: the training step sits above the metrics in the package's layers
    from supernet.losses import KLDistillation, LabelSmoothingCE
    from supernet.sampling import SandwichSampler, StepInfo
    from supernet.training import SandwichStep

    torch.manual_seed(0)
    space = load_space(space_name)
    in_chans = 1 if space_name == "tiny" else 3
    model = build(space, num_classes=10, in_chans=in_chans, dropout=0.0, drop_path=0.0).train()
    children = SandwichSampler(space, seed=0, num_random=2).children(StepInfo(3))
    size = resolution or max(child.arch.resolution for child in children)
    x, y = torch.randn(batch, in_chans, size, size), torch.randint(0, 10, (batch,))
    x, y = x.to(device), y.to(device)
    steps = {}
    for label, module in (("supernet", model), ("static", StaticChildren(model, [c.arch for c in children]))):
        step = SandwichStep(module.to(device), LabelSmoothingCE(0.1), KLDistillation())
        step(x, y, children)
        steps[label] = lambda step=step: step(x, y, children)
    return steps, size
