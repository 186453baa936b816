"""BatchNorm recalibration: the statistics of a child are recomputed before it is evaluated or exported.

Statistics are reset and accumulated as a cumulative average (momentum ``None``) over a fixed set
of training batches, in train mode, without gradients, with dropout/drop-path off (BigNAS).
Written here because ``torch.optim.swa_utils.update_bn`` resets *every* BN of the model and cannot
resize the inputs per child or average across ranks.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from supernet.distributed import mean_over_ranks
from supernet.models.base import Supernet
from supernet.ops import ElasticBatchNorm2d, resize_to

BNState = dict[str, torch.Tensor]


def _elastic_bns(model: torch.nn.Module) -> list[tuple[str, ElasticBatchNorm2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ElasticBatchNorm2d)]


@torch.no_grad()
def calibrate_bn(model: Supernet, batches: Iterable, num_batches: int, arch=None, sync: bool = True) -> BNState:
    """Recalibrate the BN statistics of the active child (or ``arch``) and return them.

    ``batches`` yields ``(x, ...)`` tuples or tensors. Under ``torch.distributed`` (and ``sync``),
    each rank's statistics are averaged across ranks (equal batch counts per rank).
    """
    if arch is not None:
        model.set_arch(arch)
    bns = _elastic_bns(model)
    if not bns:  # nothing to recalibrate (e.g. a transformer: LayerNorm has no statistics)
        return {}
    was_training = model.training
    momenta = [bn.momentum for _, bn in bns]
    for _, bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.set_regularization(False)
    model.train()
    seen = 0
    try:
        for batch in batches:
            if seen >= num_batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            device = next(model.parameters()).device
            model(resize_to(x.to(device), model.arch.resolution))
            seen += 1
    finally:
        for (_, bn), momentum in zip(bns, momenta):
            bn.momentum = momentum
        model.train(was_training)
    if seen == 0:
        raise ValueError("BN recalibration got no batches: the calibration data is empty")
    if sync:
        for _, bn in bns:
            for buf in (bn.running_mean, bn.running_var):
                buf.copy_(mean_over_ranks(buf))
    return bn_state(model)


_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def bn_state(model: torch.nn.Module) -> BNState:
    """Copies of every elastic BN's running statistics, keyed like the model's ``state_dict``."""
    return {f"{name}.{buf}": getattr(bn, buf).clone() for name, bn in _elastic_bns(model) for buf in _BN_BUFFERS}


@torch.no_grad()
def load_bn_state(model: torch.nn.Module, state: BNState) -> None:
    for name, bn in _elastic_bns(model):
        for buf in _BN_BUFFERS:
            getattr(bn, buf).copy_(state[f"{name}.{buf}"])
