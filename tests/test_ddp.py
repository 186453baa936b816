"""Data-parallel training on CPU processes (gloo): contract 2 and the one-all-reduce rule.

Equivalence setup: a 1-process run on a global batch of 32 and a 2-process run on 2 x 16 see the
same samples at every step (the data sampler gives rank r the indices r, r+2, ... of one global
permutation, and the 1-process batch holds the first 32 of it). Dropout and drop-path are off
(their masks depend on the batch shape) and the 2-process run synchronises BN statistics across
ranks (trainer.sync_batchnorm=true), so every child normalises with the statistics of the same
32 samples; the loss is a per-rank mean and gradients are averaged, i.e. the global-batch mean.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
COMMON = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "validation.calib_batches=1",
    "test_after_fit=false",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "model.kwargs.dropout=0.0",
    "model.kwargs.drop_path=0.0",
    "trainer.deterministic=true",
]


def supernet_train(run_dir: Path, overrides: list[str], check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "supernet.train", f"hydra.run.dir={run_dir}", *COMMON, *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("supernet.") and v.is_floating_point()}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ddp")
    supernet_train(
        run,
        [
            "trainer=ddp_cpu",
            "trainer.devices=2",
            "data.batch_size=16",
            "trainer.sync_batchnorm=true",
            "model.check_arch_sync=true",
        ],
    )
    return run


def test_two_processes_match_one_process_on_the_same_global_batch(ddp_run, tmp_path):
    single = tmp_path / "single"
    supernet_train(single, ["data.batch_size=32"])
    a, b = weights(single), weights(ddp_run)
    assert a.keys() == b.keys()
    moved = max(
        (a[k] - torch.load(single / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"][k]).abs().max()
        for k in a
    )
    assert moved == 0  # sanity: same file
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-5, f"largest weight difference {worst}"
    # both ranks held out the search split one process holds out (digits: 200 training images)
    held_out = lambda run: torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["supernet"]["search_split"]
    assert held_out(ddp_run) == held_out(single) and held_out(single)["size"] == 200
    # and training did move the weights (depth-elastic children trained 3 steps)
    initial_gamma = b["supernet.stages.2.2.body.project.bn.weight"]
    assert initial_gamma.abs().sum() > 0  # zero-initialised, trained by the max child only


def test_one_run_directory_and_resume_on_one_process(ddp_run, tmp_path):
    assert (ddp_run / ".hydra").is_dir() and (ddp_run / "logs" / "metrics.csv").is_file()
    assert not (ddp_run / "logs" / "version_1").exists()
    resumed = tmp_path / "resumed"
    supernet_train(
        resumed, ["trainer.max_epochs=2", f"ckpt_path={ddp_run / 'checkpoints' / 'last.ckpt'}", "data.batch_size=32"]
    )
    ckpt = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 6


@pytest.mark.parametrize("num_random", [0, 3])
def test_one_gradient_all_reduce_per_step(tmp_path, num_random):
    supernet_train(
        tmp_path,
        [
            "trainer=ddp_cpu",
            "trainer.devices=2",
            "data.batch_size=16",
            f"sampler.num_random={num_random}",
            f"+callbacks.counter={{_target_: helpers.AllReduceCounter, output_dir: '{tmp_path}'}}",
        ],
    )
    for rank in range(2):
        counts = json.loads((tmp_path / f"allreduce_rank{rank}.json").read_text())
        assert counts == [1, 1, 1], counts  # 2 + num_random children, one all-reduce per step


def test_desynchronised_sampler_is_caught(tmp_path):
    proc = supernet_train(
        tmp_path,
        [
            "trainer=ddp_cpu",
            "trainer.devices=2",
            "data.batch_size=16",
            "sampler._target_=helpers.RankSkewedSampler",
            "model.check_arch_sync=true",
        ],
        check=False,
    )
    assert proc.returncode != 0
    assert "ranks train different children at step 0" in proc.stderr + proc.stdout


def _weighted_loss_on_rank(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    from supernet.training.step import normalise_over_global_batch

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    per_sample, weights = _WEIGHTED_BATCH
    shard = slice(rank, None, 2)  # the data sampler's rank shard of the global batch
    loss = (per_sample[shard] * normalise_over_global_batch(weights[shard])).sum()
    dist.all_reduce(loss)  # DDP averages gradients, i.e. the mean of the ranks' losses
    if rank == 0:
        torch.save(loss / 2, out)
    dist.destroy_process_group()


# very unequal weights, and the heavy samples on one rank: a per-rank normalisation is far off
_WEIGHTED_BATCH = (torch.arange(1.0, 9.0), torch.tensor([8.0, 1.0, 4.0, 1.0, 2.0, 1.0, 1.0, 1.0]))


def test_importance_weighted_loss_is_normalised_over_the_global_batch(tmp_path):
    """PA&DA ``reweight=true``: the weights are normalised over the global batch, so two
    processes on two halves of a batch compute the loss (hence the gradient) of one process on
    the whole batch, even when the halves hold very different weight."""
    from supernet.training.step import normalise_over_global_batch

    torch.multiprocessing.spawn(
        _weighted_loss_on_rank, args=(str(tmp_path / "init"), str(tmp_path / "loss.pt")), nprocs=2
    )
    per_sample, weights = _WEIGHTED_BATCH
    one_process = (per_sample * normalise_over_global_batch(weights)).sum()
    assert torch.allclose(one_process, (per_sample * weights).sum() / weights.sum())
    assert torch.allclose(torch.load(tmp_path / "loss.pt", weights_only=True), one_process)


def test_importance_weighted_training_matches_one_process(tmp_path):
    """End to end: PA&DA data sampling with ``reweight=true`` on two processes stays with one
    process (epoch 2 draws from the updated, non-uniform distribution, tau=1, so the weights
    differ between samples). The tolerance allows the float32 drift of 6 SGD steps: summing in
    another order, it reached 5e-5 in this setting (and 2e-5 after 9 uniform steps)."""
    common = ["trainer.max_epochs=2", "data_sampler=pada", "data_sampler.reweight=true"]
    common.append("data_sampler.tau_schedule=constant")
    supernet_train(tmp_path / "single", [*common, "data.batch_size=32"])
    supernet_train(
        tmp_path / "ddp",
        [*common, "trainer=ddp_cpu", "trainer.devices=2", "data.batch_size=16", "trainer.sync_batchnorm=true"],
    )
    a, b = weights(tmp_path / "single"), weights(tmp_path / "ddp")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 2e-4, f"largest weight difference {worst}"
    probs = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)["supernet"]["data_sampler"][
        "probs"
    ]
    assert probs.std() > 0  # the second epoch did draw with unequal weights


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_two_nodes(run_dir: Path, overrides: list[str]) -> str:
    """``supernet-train trainer=multinode_cpu`` as two node ranks of one process each, each
    started by its own ``torchrun`` agent, meeting on a loopback rendezvous (what two machines
    do over a network). Returns both nodes' output."""
    endpoint = f"127.0.0.1:{_free_port()}"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id={run_dir.name}",
        "-m",
        "supernet.train",
        f"hydra.run.dir={run_dir}",
        *COMMON,
        "trainer=multinode_cpu",
        *overrides,
    ]
    nodes = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    if any(node.returncode for node in nodes):
        raise AssertionError("a node failed:\n" + "\n---\n".join(out[-3000:] for out in outputs))
    return "\n".join(outputs)


@pytest.mark.slow
def test_two_nodes_on_loopback_match_one_process_and_resume(tmp_path):
    """Contract 2 across nodes: ``trainer=multinode_cpu`` launched as two node ranks (torchrun,
    gloo on loopback) writes one run folder and one checkpoint, reaches the weights of one
    process on the same global batch, and resumes on two nodes to the weights of the
    uninterrupted single process. A constant LR, so that a 1-epoch leg and the 2-epoch run
    follow the same schedule."""
    constant = ["model.schedule.name=constant", "model.schedule.warmup_epochs=0"]
    single = tmp_path / "single"
    supernet_train(
        single,
        [
            *constant,
            "data.batch_size=32",
            "trainer.max_epochs=2",
            "callbacks.periodic_checkpoint={_target_: lightning.pytorch.callbacks.ModelCheckpoint, "
            "every_n_train_steps: 3, save_top_k: -1, filename: 'step{step}', auto_insert_metric_name: false, "
            "dirpath: ${hydra:runtime.output_dir}/steps}",
        ],
    )
    two_nodes = [*constant, "data.batch_size=16", "trainer.sync_batchnorm=true"]
    run = tmp_path / "multinode"
    first = torchrun_two_nodes(run, [*two_nodes, "trainer.max_epochs=1"])
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "checkpoints", "logs", "train.log"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]
    step3 = torch.load(single / "steps" / "step3.ckpt", weights_only=True)["state_dict"]
    expected = {k: v for k, v in step3.items() if k.startswith("supernet.") and v.is_floating_point()}
    got = weights(run)
    assert expected.keys() == got.keys()
    assert max((expected[k] - got[k]).abs().max().item() for k in got) <= 1e-5

    second = torchrun_two_nodes(run, [*two_nodes, "trainer.max_epochs=2", "ckpt_path=last"])
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    expected, got = weights(single), weights(run)
    # float32 drift of 6 steps summed in another order (1.7e-5 measured since the search split
    # changed the training images), as in the PA&DA test above; a lost optimizer state, schedule
    # or data order on resume moves weights by orders of magnitude more
    assert max((expected[k] - got[k]).abs().max().item() for k in got) <= 5e-5
    import pandas as pd

    metrics = pd.read_csv(run / "logs" / "metrics.csv")
    assert set(metrics["epoch"]) == {0, 1}  # both legs' rows, written by rank 0 only
    # child validation logs values torchmetrics already synchronised: no advice to sync them again
    assert "sync_dist" not in first + second
