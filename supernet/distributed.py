"""The one home of cross-rank maths: is this run distributed, means over ranks, the one gradient
all-reduce of a step, and seed derivation.

Everything here works unchanged on one process (the reductions are then identities), so callers
never branch on the world size themselves. Plain ``torch.distributed``, no Lightning: the
sandwich step, the samplers, BN calibration and the elastic BN all use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _backend_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``tensor`` over ranks (a new tensor, on ``tensor``'s device)."""
    if not is_distributed():
        return tensor.clone()
    total = tensor.detach().to(_backend_device(), copy=True)
    dist.all_reduce(total)
    return (total / dist.get_world_size()).to(tensor.device)


def masked_mean_over_ranks(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The element-wise mean over ranks of ``values`` where ``mask`` is true, in one all-reduce;
    entries masked on every rank keep this rank's value (0 after a reset)."""
    if not is_distributed():
        return values.clone()
    mask = mask.to(values.dtype)
    both = torch.stack([values * mask, mask]).to(_backend_device())
    dist.all_reduce(both)
    mean = both[0] / both[1].clamp(min=1)
    return torch.where(both[1] > 0, mean, both[0]).to(values.device)


def same_on_every_rank(value: int) -> bool:
    """True when every rank passed the same integer (one all-gather)."""
    if not is_distributed():
        return True
    local = torch.tensor([value], dtype=torch.long, device=_backend_device())
    gathered = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local)
    return all(int(g) == value for g in gathered)


def sync_gradients(grads: Sequence[torch.Tensor], local_bad: torch.Tensor) -> bool:
    """Average ``grads`` in place across ranks in ONE all-reduce of a flat buffer that also carries
    this rank's "something is not finite" flag; True when no rank flagged. One host sync.

    Done by hand instead of by DDP's reducer: DDP would either synchronise on every child's
    backward, or (with ``no_sync`` on all but the last) treat the weights that only earlier
    children used as unused and leave their gradients unsynchronised."""
    if not is_distributed():
        return not bool(local_bad)
    flat = torch.cat([g.reshape(-1) for g in grads] + [local_bad.reshape(1).to(grads[0].dtype)])
    dist.all_reduce(flat)
    world = dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g)).div_(world)
        offset += n
    return not bool(flat[-1] > 0)


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of ints and strings (``derive_seed(seed, "arch", step)``):
    the same in every process and Python version (no hash salt), distinct streams for distinct
    tuples. Every derived random stream of the package comes from here."""
    digest = hashlib.sha256(repr(tuple(parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class ShardedSampler(Sampler[int]):
    """One global index list per epoch, drawn from ``(seed, epoch)`` alone, sharded
    ``[rank::world]``; ``start`` skips indices of this rank's shard (mid-epoch resume, see
    ``supernet.data.ResumableDataLoader``). Subclasses say how the global list is drawn;
    ``stream`` names the use, so two samplers of one seed (training, calibration) draw apart."""

    def __init__(self, num_samples: int, seed: int = 0, stream: str = "train"):
        if num_samples <= 0:
            raise ValueError("the training set is empty")
        self.num_samples, self.seed, self.stream, self.epoch, self.start = num_samples, seed, stream, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_indices(self) -> torch.Tensor:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return (index for index, _ in self.draws())

    def draws(self) -> Iterator[tuple[int, int]]:
        """This rank's ``(index, augmentation seed)`` pairs. The seed is a function of (seed, epoch,
        position in the global list) only, so a sample's random augmentation is the same whatever
        the number of ranks or workers, and after a resume (``supernet.data.SeededDraws``)."""
        rank, size = rank_and_world()
        indices = self.global_indices().tolist()
        usable = len(indices) - len(indices) % size  # equal shard sizes: same number of steps per rank
        base = derive_seed(self.seed, self.stream, "augment", self.epoch)
        for position in range(rank + self.start * size, usable, size):
            yield indices[position], (base + position) % (1 << 63)

    def __len__(self) -> int:
        return self.num_samples // rank_and_world()[1]

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(self.seed, self.stream, "order", self.epoch))


class UniformDataSampler(ShardedSampler):
    """A fresh permutation per epoch (seeded), sharded across ranks."""

    def global_indices(self) -> torch.Tensor:
        return torch.randperm(self.num_samples, generator=self.generator())
