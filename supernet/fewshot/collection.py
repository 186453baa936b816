"""``SupernetCollection``: a few-shot supernet, K sub-supernets that share nothing, each owning a
part of the search space, behind the interface of one supernet.

Every member is a full copy of the supernet. A split hands the values of one group of a dimension
from an existing member (the parent) to a new one, which starts as a copy of the parent; a child
is *routed* to the member whose part of the space holds it: from member 0, through every split in
the order they were made, moving to the split's new member when the child stands in the parent
and takes one of the values it handed over. Before any split every child routes to member 0.

``set_arch`` activates the child in its owner and the collection computes with that member, so
training, BN recalibration, extraction, MAC counting and evaluation run unchanged on a collection:
it *is* a ``Supernet`` to them. All K members exist from the start (their number never changes),
so an optimizer made once holds every parameter; a member that no child of a step used has no
gradient and is left alone by the optimizer.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from supernet.fewshot.gradient_matching import Region, Split
from supernet.models import Supernet, build
from supernet.space import Arch, SearchSpace


def split_to_dict(split: Split) -> dict[str, Any]:
    return {
        "dimension": split.dimension,
        "groups": [list(g) for g in split.groups],
        "similarity": [list(row) for row in split.similarity],
        "cut": split.cut,
    }


def split_from_dict(data: Mapping[str, Any]) -> Split:
    return Split(
        str(data["dimension"]),
        tuple(tuple(g) for g in data["groups"]),
        tuple(tuple(float(s) for s in row) for row in data["similarity"]),
        float(data["cut"]),
    )


@dataclass(frozen=True)
class MemberSplit:
    """Member ``parent`` handed the values ``split.groups[1]`` of ``split.dimension`` to the new
    member ``child`` before training step ``step``; ``candidates`` are the splits measured to
    choose it, ``(member, split)`` for every member and dimension that could be split."""

    parent: int
    child: int
    step: int
    split: Split
    candidates: tuple[tuple[int, Split], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "child": self.child,
            "step": self.step,
            **split_to_dict(self.split),
            "candidates": [{"member": m, **split_to_dict(s)} for m, s in self.candidates],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemberSplit:
        return cls(
            int(data["parent"]),
            int(data["child"]),
            int(data["step"]),
            split_from_dict(data),
            tuple((int(c["member"]), split_from_dict(c)) for c in data["candidates"]),
        )


class SupernetCollection(Supernet):
    """``size`` copies of the supernet of ``space`` (``build``'s arguments), routed by the splits
    made so far (``splits``); ``active`` is the member of the active child."""

    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int, size: int, **model_kwargs):
        super().__init__(space, num_classes, in_chans)
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ValueError(f"a supernet collection needs at least 2 members, got {size!r}")
        first = build(space, num_classes, in_chans, **model_kwargs)  # member 0 initialised as a one-shot run's supernet
        self.members = nn.ModuleList([first, *(copy.deepcopy(first) for _ in range(size - 1))])
        self.splits: list[MemberSplit] = []
        self.active = 0

    # -- routing ---------------------------------------------------------------------------------
    def owner(self, arch: Arch | str) -> int:
        """The member that trains and computes the child ``arch``."""
        return self._owner(self.space.resolve(arch))

    def _owner(self, arch: Arch) -> int:
        member = 0
        for made in self.splits:
            dim = self.space.dimension(made.split.dimension)
            if member == made.parent and self.space.value(arch, dim) in made.split.groups[1]:
                member = made.child
        return member

    def region(self, member: int) -> Region:
        """The values each dimension split so far may take in ``member``'s part of the space
        (a dimension not named takes all its choices)."""
        regions: dict[int, dict] = {0: {}}
        for made in self.splits:
            dim = self.space.dimension(made.split.dimension)
            parent = regions[made.parent]
            keep, hand_over = made.split.groups
            regions[made.parent] = {**parent, dim: tuple(keep)}
            regions[made.child] = {**parent, dim: tuple(hand_over)}
        return regions[member]

    @property
    def in_use(self) -> int:
        """How many members own a part of the space (1 + the splits made)."""
        return len(self.splits) + 1

    def split(self, parent: int, split: Split, step: int, candidates: tuple[tuple[int, Split], ...]) -> int:
        """Hand ``split.groups[1]`` of ``parent`` to the next free member, which becomes a copy of
        ``parent`` (weights and BN statistics, copied in place: an optimizer's references stay
        valid); returns its index."""
        child = self.in_use
        if child >= len(self.members):
            raise ValueError(f"all {len(self.members)} members of the collection are in use: no split is left")
        with torch.no_grad():
            self.members[child].load_state_dict(self.members[parent].state_dict())
        self.splits.append(MemberSplit(parent, child, step, split, tuple(candidates)))
        return child

    def state(self) -> dict[str, Any]:
        """The routing as plain data (the checkpoint's ``fewshot`` entry)."""
        return {"members": len(self.members), "splits": [made.to_dict() for made in self.splits]}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if int(state["members"]) != len(self.members):
            raise ValueError(
                f"the checkpoint holds a collection of {state['members']} sub-supernets, this one has "
                f"{len(self.members)}: resume with the fewshot.splits of the run that wrote it"
            )
        self.splits = [MemberSplit.from_dict(made) for made in state["splits"]]

    @classmethod
    def from_state(
        cls, space: SearchSpace, num_classes: int, in_chans: int, state: Mapping[str, Any], **model_kwargs
    ) -> SupernetCollection:
        """The collection a checkpoint's ``fewshot`` entry describes (its weights still to load)."""
        collection = cls(space, num_classes, in_chans, int(state["members"]), **model_kwargs)
        collection.load_state(state)
        return collection

    # -- the Supernet interface, delegated to the owner of the active child -------------------------
    def _configure(self, arch: Arch) -> None:
        self.active = self._owner(arch)  # set_arch resolved it already: once per child per step is enough
        self.members[self.active].set_arch(arch)

    def _assemble(self) -> nn.Module:
        return self.members[self.active]._assemble()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.members[self.active](x)

    def no_weight_decay(self) -> set[str]:
        return {f"members.{i}.{name}" for i, member in enumerate(self.members) for name in member.no_weight_decay()}


def copy_optimizer_state(optimizer: torch.optim.Optimizer, source: nn.Module, target: nn.Module) -> None:
    """Give ``target``'s parameters copies of the optimizer state of ``source``'s (momentum buffers,
    Adam's moments and step), parameter by parameter: a member that starts as a copy of another
    continues its optimisation, not a fresh one."""
    for src, dst in zip(source.parameters(), target.parameters(), strict=True):
        optimizer.state.pop(dst, None)
        if optimizer.state.get(src):
            optimizer.state[dst] = {
                k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in optimizer.state[src].items()
            }
