"""Run folders: a run is never started over silently, resumes keep the whole history, the final
table always holds the final weights' results, failed commands leave nothing behind."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import FAST, train

from supernet.analysis import load_run

QUIET = ["callbacks.progress=null", "trainer.enable_progress_bar=false"]
REPO = Path(__file__).resolve().parents[1]


def supernet_train(run_dir: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "supernet.train", f"hydra.run.dir={run_dir}", *FAST, *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def _finite(rows, split: str) -> bool:
    return all(math.isfinite(r[f"{split}_acc"]) for r in rows)


def test_a_new_run_in_a_folder_that_holds_one_is_refused_before_any_work(tmp_path):
    run = tmp_path / "run"
    train(run, ["trainer.max_epochs=2", "test_after_fit=false"])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    proc = supernet_train(run, [])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: {run} already holds a run: continue it with ckpt_path=last, start another with "
        "hydra.run.dir=<another folder>, or replace it with overwrite=true"
    ]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # not even .hydra/ written
    with pytest.raises(FileExistsError, match="already holds a run"):  # the in-process entry point too
        train(run, [])
    with pytest.raises(ValueError, match="overwrite=true starts a new run: it cannot be combined with ckpt_path"):
        train(run, ["overwrite=true", "ckpt_path=last"])

    train(run, ["overwrite=true", "test_after_fit=false"])  # 1 epoch where there were 2
    assert _step(run) == 3
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]
    assert set(pd.read_csv(run / "logs" / "metrics.csv")["epoch"]) == {0}


def test_auto_starts_then_resumes_keeping_the_history_and_final_results(tmp_path):
    run = tmp_path / "run"
    latest = REPO / "outputs" / "train" / "latest"
    latest_before = os.readlink(latest) if latest.is_symlink() else None
    auto = ["ckpt_path=auto", "logger=[csv,tensorboard]"]

    first = train(run, [*auto, "test_after_fit=false"])  # nothing to resume: a new run
    assert first["trainer"].global_step == 3
    first_events = set((run / "tensorboard").glob("events.out.tfevents.*"))
    second = train(run, [*auto, "trainer.max_epochs=2"])  # resumes
    assert second["trainer"].global_step == 6 and _finite(second["rows"], "val") and _finite(second["rows"], "test")

    # every leg's rows, in the CSV and in what the report and the notebook read
    metrics = pd.read_csv(run / "logs" / "metrics.csv")
    assert {0, 1} <= set(metrics["epoch"]) and {"val/max/acc", "train/max/loss"} <= set(metrics.columns)
    assert metrics.dropna(subset=["val/max/acc"])["step"].tolist() == [2, 5]
    history = load_run(run).metrics
    assert history["step"].is_unique and history.dropna(subset=["val/max/acc"])["epoch"].tolist() == [0, 1]
    assert first_events and first_events < set((run / "tensorboard").glob("events.out.tfevents.*"))  # read together

    # ending on max_steps, between two validations: validated at the last step
    third = train(run, ["ckpt_path=last", "trainer.max_epochs=-1", "trainer.max_steps=7", "test_after_fit=false"])
    validation = next(c for c in third["trainer"].callbacks if type(c).__name__ == "ChildValidation")
    assert third["trainer"].global_step == 7 and validation.evaluated_at == {"val": 7}
    assert _finite(third["rows"], "val")
    # a finished run resumed: nothing to train, the table is still whole
    fourth = train(run, ["ckpt_path=last", "trainer.max_epochs=-1", "trainer.max_steps=7"])
    assert fourth["trainer"].global_step == 7 and _finite(fourth["rows"], "val") and _finite(fourth["rows"], "test")
    history = load_run(run).metrics
    final = history.dropna(subset=["val/max/acc"]).iloc[-1]  # what the report and notebook show last
    assert history["step"].is_unique and final["val/max/acc"] == fourth["rows"][0]["val_acc"]

    # runs outside the working directory leave its outputs/train/latest alone
    assert (os.readlink(latest) if latest.is_symlink() else None) == latest_before


def test_a_command_stopped_by_bad_input_leaves_no_run_folder(tmp_path):
    proc = supernet_train(tmp_path / "new" / "run", ["data.batch_size=-3"])
    assert proc.returncode == 2 and "data.batch_size=-3 must be > 0" in proc.stderr
    assert not (tmp_path / "new").exists()

    mine = tmp_path / "mine"  # a folder the user made is theirs: kept
    mine.mkdir()
    proc = supernet_train(mine, ["data.batch_size=-3"])
    assert proc.returncode == 2 and mine.is_dir()


def test_a_run_folder_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = supernet_train(blocker / "run", [])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: hydra.run.dir={blocker / 'run'} cannot be written: Not a directory"
    ]
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        proc = supernet_train(locked / "run", [])
        assert proc.returncode == 2 and "cannot be written: Permission denied" in proc.stderr
        assert "Traceback" not in proc.stderr
