"""``ElasticBatchNorm2d``: batch norm over the leading channels of its largest statistics.

Deliberately *not* a subclass of ``nn.BatchNorm2d``: ``SyncBatchNorm.convert_sync_batchnorm``
(used by Lightning's ``sync_batchnorm``) would replace it by a fixed-width layer. Cross-rank
statistics are handled by the elastic layer itself (``sync_group``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


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

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def _factor(self) -> float:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative average (BN recalibration)
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        mean, var = self.running_mean[:c], self.running_var[:c]
        weight, bias = self.weight[:c], self.bias[:c]
        if not self.training:
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        factor = self._factor()
        if self.sync_group is not None and dist.is_available() and dist.is_initialized():
            return _sync_batch_norm(x, mean, var, weight, bias, self.eps, factor, self.sync_group)
        return F.batch_norm(x, mean, var, weight, bias, True, factor, self.eps)

    @torch.no_grad()
    def export(self, num_features: int) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(num_features, eps=self.eps, momentum=self.momentum).to(self.weight.device)
        bn.weight.copy_(self.weight[:num_features])
        bn.bias.copy_(self.bias[:num_features])
        bn.running_mean.copy_(self.running_mean[:num_features])
        bn.running_var.copy_(self.running_var[:num_features])
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
