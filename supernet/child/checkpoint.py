"""Load a supernet out of a ``supernet-train`` checkpoint, safely, and name children of its space.

Checkpoints are read with ``torch.load(weights_only=True)`` only: tensors and plain containers,
never arbitrary pickled objects, so a checkpoint from elsewhere cannot run code on load. A
checkpoint of few-shot training (a ``fewshot`` entry) loads as the ``SupernetCollection`` it holds,
which its users drive as one supernet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supernet.checkpoint_format import CHECKPOINT_KEY, WEIGHTS_PREFIX
from supernet.errors import first_line
from supernet.fewshot import SupernetCollection
from supernet.models import Supernet, build
from supernet.space import SearchSpace


@dataclass
class LoadedSupernet:
    model: Supernet  # a SupernetCollection for a checkpoint of few-shot training
    space: SearchSpace
    meta: dict[str, Any]
    path: Path
    fingerprint: str  # what the numbers measured on this supernet depend on (``fingerprint``)


def fingerprint(meta: Mapping[str, Any], weights: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a supernet: its space, classes, input channels and build options (and for a
    few-shot collection its routing), and every weight (name, dtype, shape, bytes). Two checkpoints
    with the same weights (``last.ckpt`` and a ``best-*.ckpt`` of the same step, a copy elsewhere)
    have the same fingerprint; any training step changes it. Reading the weights of a
    memory-mapped checkpoint once costs about a second per GB: the price of a tie that survives
    copies, renames and touched files."""
    digest = hashlib.sha256()
    described = {k: meta.get(k) for k in ("space", "num_classes", "in_chans", "model_kwargs")}
    if "fewshot" in meta:  # only then: the fingerprints of one-shot checkpoints stay what they were
        described["fewshot"] = meta["fewshot"]
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name in sorted(weights):
        tensor = weights[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict (tensors on the CPU, memory-mapped: the optimizer state is never read
    in), or a one-line error naming the file: missing, unreadable, not written by supernet-train."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is an empty file, not a checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, bad pickle opcodes, refused globals: all "unreadable"
        raise ValueError(f"{path} is not a readable checkpoint (truncated or corrupt?): {first_line(err)}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get(CHECKPOINT_KEY), Mapping):
        raise ValueError(f"{path} was not written by supernet-train (it has no {CHECKPOINT_KEY!r} entry)")
    if not isinstance(ckpt.get("state_dict"), Mapping):
        raise ValueError(f"{path} has no 'state_dict' with the supernet weights")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedSupernet:
    """The supernet of a ``supernet-train`` checkpoint with its weights (on ``map_location``),
    space and description."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    meta = dict(ckpt[CHECKPOINT_KEY])
    missing = [k for k in ("space", "num_classes", "in_chans") if k not in meta]
    if missing:
        raise ValueError(f"{path}: the {CHECKPOINT_KEY!r} entry lacks {missing}")
    try:
        space = SearchSpace.from_dict(meta["space"])
    except ValueError as err:
        raise ValueError(f"{path}: the search space stored in the checkpoint is invalid: {first_line(err)}") from None
    shape, kwargs = (space, int(meta["num_classes"]), int(meta["in_chans"])), dict(meta.get("model_kwargs") or {})
    if "fewshot" not in meta:
        model = build(*shape, **kwargs)
    else:
        try:
            model = SupernetCollection.from_state(*shape, meta["fewshot"], **kwargs)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: the few-shot collection it describes is invalid: {first_line(err)}") from None
    weights = {k[len(WEIGHTS_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(WEIGHTS_PREFIX)}
    identity = fingerprint(meta, weights)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: the weights do not fit the supernet of space {space.name!r} stored with them: {first_line(err)}"
        ) from None
    return LoadedSupernet(model.to(map_location), space, meta, path, identity)
