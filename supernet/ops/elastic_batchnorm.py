"""``ElasticBatchNorm2d``: batch norm over the leading channels of its largest statistics.

Deliberately *not* a subclass of ``nn.BatchNorm2d``: ``SyncBatchNorm.convert_sync_batchnorm``
(used by Lightning's ``sync_batchnorm``) would replace it by a fixed-width layer. Cross-rank
statistics are handled by the elastic layer itself (``sync_group``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.distributed import is_distributed
from supernet.ops.slicing import TensorWindows


class ElasticBatchNorm2d(nn.Module):
    def __init__(self, max_features: int, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__()
        self.max_features, self.eps, self.momentum = max_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(max_features))
        self.bias = nn.Parameter(torch.zeros(max_features))
        self.register_buffer("running_mean", torch.zeros(max_features))
        self.register_buffer("running_var", torch.ones(max_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        # Set by ``sync_batchnorm`` (training/ddp): use statistics of the whole global batch.
        self.sync_group: object | None = None
        self.windows = TensorWindows()

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def _factor(self) -> float:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative average (BN recalibration)
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def active_weight(self, in_features: int) -> tuple[torch.Tensor, ...]:
        """Views of the leading ``in_features`` entries of weight, bias, running mean and variance
        (the running views are written in place by training-mode forwards)."""
        window = ((0, in_features),)
        return self.windows(self, *((name, window) for name in ("weight", "bias", "running_mean", "running_var")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias, mean, var = self.active_weight(x.shape[1])
        if not self.training:
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        factor = self._factor()
        if self.sync_group is not None and is_distributed():
            return _sync_batch_norm(x, mean, var, weight, bias, self.eps, factor, self.sync_group)
        return F.batch_norm(x, mean, var, weight, bias, True, factor, self.eps)

    @torch.no_grad()
    def export(self, in_features: int) -> nn.BatchNorm2d:
        # the supernet's dtype too (a float64 supernet exports float64 layers, as the other ops do)
        bn = nn.BatchNorm2d(in_features, eps=self.eps, momentum=self.momentum).to(self.weight.device, self.weight.dtype)
        for target, source in zip(
            (bn.weight, bn.bias, bn.running_mean, bn.running_var), self.active_weight(in_features)
        ):
            target.copy_(source)
        bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn

    def extra_repr(self) -> str:
        return f"max_features={self.max_features}, eps={self.eps}, momentum={self.momentum}"


def _sync_batch_norm(x, mean, var, weight, bias, eps, factor, group):
    """Batch norm with mean/variance of the global batch (all ranks), differentiable.

    Uses ``torch.distributed.nn.all_reduce`` so gradients flow through the reduced moments; written
    by hand because ``nn.SyncBatchNorm`` cannot run on a slice of its parameters.
    """
    from torch.distributed.nn import all_reduce

    group = None if group is True else group
    dims = (0, 2, 3)
    count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=x.dtype)
    local = torch.cat([x.sum(dims), (x * x).sum(dims), count])
    total = all_reduce(local, group=group)
    c = x.shape[1]
    n = total[-1]
    batch_mean = total[:c] / n
    batch_var = total[c : 2 * c] / n - batch_mean * batch_mean
    with torch.no_grad():
        mean.mul_(1 - factor).add_(batch_mean.detach(), alpha=factor)
        var.mul_(1 - factor).add_(batch_var.detach() * n / max(float(n) - 1, 1.0), alpha=factor)
    shape = (1, c, 1, 1)
    y = (x - batch_mean.view(shape)) * torch.rsqrt(batch_var.view(shape) + eps)
    return y * weight.view(shape) + bias.view(shape)
