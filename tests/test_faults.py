"""Faults: kill and resume, signals, interrupted checkpoint writes, divergence."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import train

TESTS = Path(__file__).resolve().parent
RUN = [
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=1",
    "validation.calib_batches=1",
    "test_after_fit=false",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "trainer.deterministic=true",
    "callbacks.last_checkpoint.every_n_train_steps=2",
]


def _start(run_dir: Path, extra: list[str] = (), periodic: bool = True) -> subprocess.Popen:
    run = RUN if periodic else RUN[:-1]
    cmd = [sys.executable, "-m", "supernet.train", f"hydra.run.dir={run_dir}", *run, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _weights(run_dir: Path) -> tuple[int, dict[str, torch.Tensor]]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["global_step"], {k: v for k, v in ckpt["state_dict"].items() if v.is_floating_point()}


def _wait_for_checkpoint(proc: subprocess.Popen, path: Path, timeout: float = 300) -> None:
    start = time.time()
    while not path.exists():
        if proc.poll() is not None or time.time() - start > timeout:
            proc.kill()
            raise AssertionError(f"no checkpoint appeared:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("full")
    proc = _start(run)
    assert proc.wait(300) == 0, proc.stdout.read()
    return _weights(run)


def _assert_same(a, b):
    assert a[0] == b[0] == 18
    assert a[1].keys() == b[1].keys()
    worst = max((a[1][k] - b[1][k]).abs().max().item() for k in a[1])
    assert worst <= 1e-6, worst


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume(uninterrupted, tmp_path):
    proc = _start(tmp_path)
    _wait_for_checkpoint(proc, tmp_path / "checkpoints" / "last.ckpt")
    time.sleep(random.Random().uniform(0.0, 3.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    _resume_and_compare(uninterrupted, tmp_path, periodic=True)


def _resume_and_compare(uninterrupted, run_dir: Path, periodic: bool) -> None:
    resumed = _start(run_dir, ["ckpt_path=last"], periodic=periodic)
    assert resumed.wait(300) == 0, resumed.stdout.read()
    _assert_same(uninterrupted, _weights(run_dir))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_then_resume(uninterrupted, tmp_path):
    proc = _start(tmp_path, periodic=False)  # last.ckpt only at epoch ends: a save mid-epoch is the signal's
    last = tmp_path / "checkpoints" / "last.ckpt"
    _wait_for_checkpoint(proc, last)
    time.sleep(0.5)
    signalled = time.time()
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert "SIGTERM" in out
    assert last.stat().st_mtime >= signalled, "no checkpoint was written on the signal"
    _resume_and_compare(uninterrupted, tmp_path, periodic=False)


def _sigterm_at(
    run_dir: Path, epoch: int, batch: int, extra: list[str] = (), signum=signal.SIGTERM, group: bool = False
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    sender = {
        (signal.SIGTERM, False): "helpers.SigtermAt",
        (signal.SIGINT, False): "helpers.SigintAt",
        (signal.SIGINT, True): "helpers.SigintGroupAt",
    }[signum, group]
    cmd = [
        sys.executable,
        "-m",
        "supernet.train",
        f"hydra.run.dir={run_dir}",
        *RUN[:-1],
        *extra,
        f"+callbacks.sigterm={{_target_: {sender}, epoch: {epoch}, batch: {batch}}}",
    ]
    # a session of its own: a signal to its process group stays inside it
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, start_new_session=True)
    assert signum.name in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    step = _weights(run_dir)[0]
    assert step == epoch * 6 + batch + 1, f"the signal's checkpoint is at step {step}"
    # the exit status a shell gives a command that a signal ended, and the way on
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    assert f"hydra.run.dir={run_dir} ckpt_path=last" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("epoch,batch", [(1, 2), (2, 5)], ids=["mid-run", "last-step"])
def test_sigterm_at_a_chosen_step_then_resume(uninterrupted, tmp_path, epoch, batch):
    """The last step is the subtle one: validation still runs after the signal's checkpoint, and
    must not leave its recalibrated BN statistics in the supernet."""
    _sigterm_at(tmp_path, epoch, batch)
    _resume_and_compare(uninterrupted, tmp_path, periodic=False)


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["to the process", "to its group, loader workers too"])
def test_sigint_at_a_chosen_step_then_resume(uninterrupted, tmp_path, group):
    """Ctrl-C (SIGINT, as a terminal sends it: to the process group, where the data loader's
    workers get it too) stops after the current step and saves it, with the loader's position:
    the resume is as exact as after SIGTERM."""
    _sigterm_at(tmp_path, 1, 2, ["data.num_workers=2"] if group else [], signum=signal.SIGINT, group=group)
    _resume_and_compare(uninterrupted, tmp_path, periodic=False)


@pytest.mark.slow
def test_pada_run_resumes_exactly_from_a_sigterm_at_an_epoch_end(tmp_path):
    """PA&DA updates its path and data distributions at the end of every epoch: a checkpoint taken
    at an epoch's last batch must already hold the update (the resumed run does not redo it)."""
    pada = ["experiment=pada_digits"]
    full = _start(tmp_path / "full", pada, periodic=False)
    assert full.wait(300) == 0, full.stdout.read()
    _sigterm_at(tmp_path / "cut", 0, 5, pada)
    resumed = _start(tmp_path / "cut", [*pada, "ckpt_path=last"], periodic=False)
    assert resumed.wait(300) == 0, resumed.stdout.read()
    _assert_same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    samplers = [
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["supernet"]
        for d in (tmp_path / "full", tmp_path / "cut")
    ]
    assert samplers[0]["sampler"]["probs"] == samplers[1]["sampler"]["probs"]
    assert torch.equal(samplers[0]["data_sampler"]["probs"], samplers[1]["data_sampler"]["probs"])


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    """A checkpoint is written to a temporary file and renamed (Lightning's ``_atomic_save`` runs
    the write in an fsspec transaction): dying half-way through leaves the previous file intact."""
    from fsspec.implementations.local import LocalFileOpener
    from lightning.fabric.utilities.cloud_io import _atomic_save

    train(tmp_path, [])
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    original_write = LocalFileOpener.write

    def dying_write(self, data):
        original_write(self, bytes(data)[: len(data) // 2])
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(LocalFileOpener, "write", dying_write)
    ckpt = torch.load(last, weights_only=True)
    ckpt["state_dict"] = {k: v + 1 for k, v in ckpt["state_dict"].items()}
    with pytest.raises(KeyboardInterrupt):
        _atomic_save(ckpt, last)
    monkeypatch.undo()
    assert last.read_bytes() == before
    torch.load(last, weights_only=True)  # still a loadable checkpoint


def test_divergence_stops_before_the_optimizer_step(tmp_path):
    from supernet.training import DivergenceError

    with pytest.raises(DivergenceError, match="non-finite .* at step") as err:
        train(tmp_path, ["model.optimizer.lr=1e30", "model.grad_clip.value=null", "trainer.limit_train_batches=6"])
    assert "optimizer step was not applied" in str(err.value)


def test_divergence_skip_mode_keeps_weights_finite(tmp_path):
    result = train(
        tmp_path,
        [
            "model.optimizer.lr=1e30",
            "model.grad_clip.value=null",
            "model.on_nonfinite=skip",
            "trainer.limit_train_batches=4",
        ],
    )
    for p in result["module"].supernet.parameters():
        assert torch.isfinite(p).all()
