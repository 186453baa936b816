"""What the numbers of ``supernet-evaluate`` and ``supernet-search`` depend on: the identity their
tables carry (``supernet.child.table.KeyedTable``), so that a rerun resumes only a table measured
on the same supernet weights with the same settings, and refuses any other, saying what differs.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from supernet.cli.common import plain

# data keys that change how fast the data is read, not the numbers (eval_batch_size: evaluation
# runs in eval mode, where a batch's size changes no output)
SPEED_ONLY_DATA_KEYS = ("num_workers", "pin_memory", "persistent_workers", "download", "eval_batch_size")


def latency_settings(cfg: DictConfig):
    """The configured ``latency`` group with its device resolved (``auto`` -> cpu or cuda)."""
    from supernet.child import resolve_device
    from supernet.metrics import LatencySettings

    lat = plain(cfg.latency)
    return LatencySettings(**{**lat, "device": str(resolve_device(str(lat.get("device", "cpu"))))})


def table_identity(cfg: DictConfig, fingerprint: str, **settings: Any) -> dict[str, Any]:
    """The identity columns of a table of children of the checkpoint with SHA-256 ``fingerprint``:
    ``checkpoint_sha256`` and ``settings`` (BN recalibration batches, the data config but for its
    speed-only keys, and ``settings``). The device that computes accuracies is left out: it moves
    them by float rounding only."""
    data = {k: v for k, v in (plain(cfg.data) or {}).items() if k not in SPEED_ONLY_DATA_KEYS}
    return {
        "checkpoint_sha256": fingerprint,
        "settings": {"calib_batches": cfg.calib_batches, "data": data, **settings},
    }
