"""``TensorWindows``: the views of an elastic layer's largest tensors that its children compute with.

Every elastic op takes its active weights through one ``TensorWindows`` (``active_weight`` calls
it, so the forward pass and ``export`` read the same window). Written by hand because autograd's
own slicing costs a training step far more than the child's arithmetic at the batch sizes where
the host bounds the step (a GPU step, or a small child):

* forward: one operator per sliced dimension per tensor per child (a kernel crop and a channel
  slice are three), dispatched again at every call;
* backward: per sliced dimension a ``slice_backward`` that writes a zero-filled gradient of the
  full size, then one more full-size addition into ``.grad`` (``AccumulateGrad``).

Here a window is cut once and kept (a view: no copy, and the optimizer's in-place updates show
through it), and its gradient is added into the window of the parameter's gradient in place: per
parameter per child one operator, as for a static network's ``AccumulateGrad``
(``benchmarks/host_overhead.py`` counts them). ``Parameter.grad`` keeps its usual meaning: it is
``None`` until a backward pass reaches the parameter (then a full-size tensor, zero outside the
windows used) and gradients accumulate into it until it is set to ``None`` again. The tensor
behind it is kept between steps, so no step allocates gradients.

Hooks registered with ``Tensor.register_hook`` on a parameter do not see these gradients (the
parameter's ``AccumulateGrad`` never runs): observe them with ``on_gradient``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.weak import WeakTensorKeyDictionary

Window = tuple[tuple[int, int], ...]  # (start, stop) for each leading dimension


# observers by parameter, outside the parameter (a closure in its __dict__ would stop it pickling)
_OBSERVERS: WeakTensorKeyDictionary = WeakTensorKeyDictionary()


def on_gradient(param: torch.Tensor, observer: Callable[[torch.Tensor], None]) -> None:
    """Call ``observer(grad)`` with every gradient that a backward pass adds to ``param``: the
    gradient of the window used (zero elsewhere), or the full gradient of a parameter that is
    not windowed. Observers only read: what they return is ignored."""
    observers = _OBSERVERS.get(param)
    if observers is None:
        observers = _OBSERVERS[param] = []

        def observe(grad: torch.Tensor | None) -> None:
            if grad is None:  # the parameter's own node, visited with nothing when a window took the gradient
                return
            for fn in observers:
                fn(grad)

        param.register_hook(observe)
    observers.append(observer)


class _GradientTarget:
    """Where the gradient of one window of one parameter goes."""

    def __init__(self, param: nn.Parameter, index: tuple[slice, ...], buffer: torch.Tensor):
        self.param, self.index, self.buffer = param, index, buffer
        self.full = all(s == slice(0, n) for s, n in zip(index, param.shape)) and len(index) == param.dim()
        self.buffer_window = buffer[index]

    def add(self, grad: torch.Tensor) -> None:
        current = self.param.grad
        if current is self.buffer:
            self.buffer_window.add_(grad)
        elif current is None:
            if not self.full:
                self.buffer.zero_()
            self.buffer_window.copy_(grad)
            self.param.grad = self.buffer
        else:  # a gradient tensor set by someone else: accumulate into it all the same
            current[self.index].add_(grad)
        if _OBSERVERS:  # the weak-key lookup is a tenth of this call: skip it when nobody observes
            for observer in _OBSERVERS.get(self.param, ()):
                observer(grad)


class _Windows(torch.autograd.Function):
    """Identity on views of parameters' storage, whose backward adds into the parameters'
    gradients. One node serves all the windows a module takes at once (weight and bias: one Python
    backward per module, not per parameter). It keeps no tensors, so one cached output serves every
    step's graph."""

    @staticmethod
    def forward(ctx, targets: tuple[_GradientTarget, ...], *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # the parameters come first (inputs that require grad, so the outputs do), then their views
        ctx.targets = targets
        ctx.set_materialize_grads(False)
        return tensors[len(targets) :]

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None):
        for target, grad in zip(ctx.targets, grads):
            if grad is not None:
                target.add(grad)
        return (None,) * (1 + 2 * len(ctx.targets))


def _index(window: Window) -> tuple[slice, ...]:
    return tuple(slice(start, stop) for start, stop in window)


class TensorWindows:
    """The windows of one module's parameters and buffers, cut once and kept.

    ``windows(module, ("weight", ((0, 16), (0, 8))), ("bias", ((0, 16),)))`` is
    ``(module.weight[:16, :8], module.bias[:16])``: with gradients on (training), views whose
    gradients go into the parameters' ``.grad`` in place (see the module docstring), through one
    autograd node for the call; otherwise plain views. Ask for all of a module's windows in one call.
    Cached views are used only while every tensor is the same object on the same storage with the
    same ``requires_grad`` (``.to()``, ``.double()``, ``channels_last`` replace the storage: the
    windows are cut again). Not copied with the module (``copy.deepcopy``, pickling).
    """

    def __init__(self) -> None:
        self._views: dict[tuple, tuple[tuple, tuple[torch.Tensor, ...]]] = {}
        self._buffers: dict[str, tuple[torch.Tensor, int, torch.Tensor]] = {}

    def __deepcopy__(self, memo: dict) -> TensorWindows:
        return TensorWindows()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __call__(self, module: nn.Module, *requests: tuple[str, Window]) -> tuple[torch.Tensor, ...]:
        grad_enabled = torch.is_grad_enabled()
        key = (requests, grad_enabled)
        cached = self._views.get(key)
        # the tensors read from the module's own tables: ``nn.Module.__getattr__`` is a Python
        # call per name, and this runs for every elastic op of every child (written for speed)
        parameters, buffers = module._parameters, module._buffers
        tensors = []
        for name, _ in requests:
            tensor = parameters.get(name)
            tensors.append(buffers[name] if tensor is None else tensor)
        if torch.is_inference_mode_enabled():
            return tuple(tensor[_index(window)] for tensor, (_, window) in zip(tensors, requests))
        if cached is not None:
            for tensor, (held, ptr, requires_grad) in zip(tensors, cached[0]):
                if tensor is not held or tensor.data_ptr() != ptr or tensor.requires_grad != requires_grad:
                    break
            else:
                return cached[1]
        views = [tensor.detach()[_index(window)] for tensor, (_, window) in zip(tensors, requests)]
        tracked = [i for i, tensor in enumerate(tensors) if grad_enabled and tensor.requires_grad]
        if tracked:
            # ``.data``: views with their own version counter, so the optimizer's in-place update of
            # a parameter does not make autograd rebuild the cached node
            targets = tuple(self._target(requests[i][0], tensors[i], requests[i][1]) for i in tracked)
            params = [tensors[i] for i in tracked]
            outputs = _Windows.apply(targets, *params, *(tensors[i].data[_index(requests[i][1])] for i in tracked))
            for i, output in zip(tracked, outputs):
                views[i] = output
        views = tuple(views)
        self._views[key] = (tuple((tensor, tensor.data_ptr(), tensor.requires_grad) for tensor in tensors), views)
        return views

    def _target(self, name: str, param: torch.Tensor, window: Window) -> _GradientTarget:
        held = self._buffers.get(name)
        if held is None or held[0] is not param or held[1] != param.data_ptr():
            # a new storage: the views cut from the old one must not be used again
            self._views = {key: value for key, value in self._views.items() if all(n != name for n, _ in key[0])}
            held = (param, param.data_ptr(), torch.zeros_like(param))
            self._buffers[name] = held
        return _GradientTarget(param, _index(window), held[2])
