"""Where the commands that read a checkpoint (extract, evaluate, search) write by default: inside
the training run the checkpoint belongs to, so that ``supernet-report <run>`` and the notebook find
their tables with the run.

``conf/{extract,evaluate,search}.yaml`` set ``hydra.run.dir`` through the resolver registered
here (importing this module registers it, before Hydra resolves the run folder):
``<run>/<command>/<date>_<time>`` when the checkpoint lies in ``<run>/checkpoints/`` of a
``supernet-train`` run (one with ``.hydra/``), else ``outputs/<command>/<date>/<time>``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def run_of(ckpt_path: str | None) -> Path | None:
    """The training run folder holding ``ckpt_path`` (``<run>/checkpoints/<file>``), if any."""
    if not ckpt_path:
        return None
    run = Path(ckpt_path).parent.parent
    if Path(ckpt_path).parent.name != "checkpoints" or not (run / ".hydra").is_dir():
        return None
    return run


def command_dir(ckpt_path: str | None, command: str, date: str, time: str) -> str:
    run = run_of(ckpt_path)
    return str(run / command / f"{date}_{time}") if run is not None else f"outputs/{command}/{date}/{time}"


OmegaConf.register_new_resolver("supernet.command_dir", command_dir, replace=True)
