"""A catalogue of bad inputs: each stops with a non-zero exit, one message naming the problem,
and no new artifact (no checkpoint, no artifact folder, no table) left behind."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

QUIET = ["callbacks.progress=null", "trainer.enable_progress_bar=false"]

# (id, overrides, expected words in the message)
TRAIN_CASES = [
    ("negative batch size", ["data.batch_size=-3"], "data.batch_size=-3 must be > 0"),
    ("string epochs", ["trainer.max_epochs=abc"], "trainer.max_epochs='abc' must be an integer"),
    ("zero learning rate", ["model.optimizer.lr=0"], "model.optimizer.lr=0 must be > 0"),
    ("unknown schedule", ["model.schedule.name=linear"], "model.schedule.name='linear' is not one of"),
    (
        "validation child outside the space",
        ["validation.children=[max,'r99s8h64/w8d1k3e1/w16d1k3e2/w24d1k3e2']"],
        "resolution = 99 is not allowed",
    ),
    ("malformed arch string", ["validation.children=[max,'r24s16h96/w16dXk3']"], "malformed arch string"),
    (
        "arch of another space",
        ["sampler=fixed", "sampler.arch='r192s16h1792/w16d1k3e1/w24d3k3e4'"],
        "it has 2 stages, the space has 3",
    ),
    ("unknown group option", ["sampler=nope"], "Could not find 'sampler/nope'"),
    (
        "missing data folder",
        ["data=cifar10", "data.root=/nonexistent/cifar"],
        "data.root='/nonexistent/cifar' does not exist",
    ),
    ("imagefolder without splits", ["data=imagefolder", "data.root=__EMPTY_DIR__"], "has no 'train' folder"),
    ("empty validation children", ["validation.children=[]"], "validation.children is empty"),
    ("missing checkpoint", ["ckpt_path=/nonexistent/last.ckpt"], "checkpoint not found: /nonexistent/last.ckpt"),
    ("truncated checkpoint", ["ckpt_path=__TRUNCATED__"], "__TRUNCATED__"),
    ("empty checkpoint file", ["ckpt_path=__EMPTY_CKPT__"], "is an empty file, not a checkpoint"),
    ("bad space declaration", ["space.stages.0.kernel=[4]"], "kernel sizes must be odd"),
    (
        "unknown activation",
        ["space.activation=hswish"],
        "space 'tiny' activation='hswish' is not a known activation; known: [",
    ),
    ("shrinking not a mapping", ["sampler.shrinking=0.5"], "sampler.shrinking=0.5 must be null or a mapping"),
    ("zero distillation temperature", ["distill.temperature=0"], "distill.temperature must be > 0"),
    (
        "data sampler EMA out of range",
        ["data_sampler=pada", "data_sampler.ema=1.5"],
        "data_sampler.ema must be in [0, 1)",
    ),
    ("Lightning's automatic clipping", ["+trainer.gradient_clip_val=1.0"], "use model.grad_clip.value"),
    ("image folder without a root", ["data=imagefolder"], "data.root is required"),
    ("no devices", ["trainer.devices=0"], "Trainer(devices=0)"),
    ("fp16 with manual optimisation", ["trainer.precision=16-mixed"], "trainer.precision=16-mixed is not supported"),
    ("no training batches", ["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 must be > 0"),
    (
        "NaN-producing learning rate",
        [
            "model.optimizer.lr=1e30",
            "model.grad_clip.value=null",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=4",
        ],
        "non-finite",
    ),
]


# Checked through the real command (a subprocess); the others run the same entry point in-process.
SUBPROCESS = {"unknown group option", "truncated checkpoint", "NaN-producing learning rate"}


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _run_in_process(run_dir: Path, overrides: list[str]) -> _Result:
    """``supernet-train`` minus the interpreter start: compose, then the CLI's error wrapper."""
    import contextlib
    import io

    from supernet.cli.common import user_errors
    from supernet.cli.train import compose, run

    err, out = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            user_errors(run)(compose([*QUIET, *overrides], run_dir))
        except SystemExit as exit_:
            code = exit_.code
    return _Result(code, out.getvalue(), err.getvalue())


def _run(run_dir: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "supernet.train", f"hydra.run.dir={run_dir}", *QUIET, *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def train_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    empty = base / "empty"
    empty.mkdir()
    truncated = base / "truncated.ckpt"
    truncated.write_bytes(b"PK\x03\x04 this is not a whole checkpoint")
    empty_ckpt = base / "empty.ckpt"
    empty_ckpt.touch()

    def prepare(case):
        name, overrides, _ = case
        fixed = [
            o.replace("__EMPTY_DIR__", str(empty))
            .replace("__TRUNCATED__", str(truncated))
            .replace("__EMPTY_CKPT__", str(empty_ckpt))
            for o in overrides
        ]
        return name, base / name.replace(" ", "_"), fixed

    def one(case):
        name, run_dir, fixed = prepare(case)
        return name, run_dir, _run(run_dir, fixed), str(truncated)

    def one_in_process(case):
        name, run_dir, fixed = prepare(case)
        return name, run_dir, _run_in_process(run_dir, fixed), str(truncated)

    results = {name: rest for name, *rest in map(one_in_process, [c for c in TRAIN_CASES if c[0] not in SUBPROCESS])}
    with ThreadPoolExecutor(2) as pool:
        results.update({name: rest for name, *rest in pool.map(one, [c for c in TRAIN_CASES if c[0] in SUBPROCESS])})
    return results


@pytest.mark.parametrize("name, overrides, expected", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_refuses_bad_input(train_results, name, overrides, expected):
    run_dir, proc, truncated = train_results[name]
    message = (proc.stderr + proc.stdout).replace(truncated, "__TRUNCATED__")
    assert proc.returncode != 0, message[-2000:]
    assert expected in message, message[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())


def test_a_yaml_syntax_error_in_a_config_file_is_one_line(tmp_path):
    """Hydra reads the space of ``--config-dir my_conf space=my_space`` itself, and printed a
    YAML error as a 100-line traceback with exit code 1."""
    (tmp_path / "my_conf" / "space").mkdir(parents=True)
    bad = tmp_path / "my_conf" / "space" / "my_space.yaml"
    bad.write_text("name: my_space\nfamily: mbconv\nstages: [unclosed\n")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "supernet.train", "--config-dir", str(tmp_path / "my_conf"), "space=my_space"]
    proc = subprocess.run([*cmd, f"hydra.run.dir={run_dir}"], capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{bad}, line 4, column 1: expected ',' or ']'" in lines[0], lines[0]
    assert not run_dir.exists()


def test_debug_flag_shows_the_traceback(tmp_path):
    proc = _run(tmp_path, ["data.batch_size=-3", "debug=true"])
    assert proc.returncode != 0 and "Traceback" in proc.stderr
