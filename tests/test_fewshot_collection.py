"""Few-shot training with a supernet collection (issue 17, item 1): routing, the split during
training (the same on every rank), exact extraction from a sub-supernet, exact resume across the
split, and the commands that read a checkpoint working on a collection unchanged.

One short few-shot run and one one-shot run of the same settings (module fixtures) give the
checkpoints most tests read: 2 epochs of 4 steps, the split before step 3, checkpoints every 2 steps.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from helpers import compose_config, one_thread, supernet_weights, train  # noqa: F401 (one_thread: a fixture)

from supernet.child import evaluator_for, load, load_checkpoint
from supernet.fewshot import Split, SplitSchedule, SupernetCollection, copy_optimizer_state
from supernet.models import Supernet
from supernet.ops import resize_to

TESTS = Path(__file__).resolve().parent
SPLIT_STEP = 3
COMMON = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.deterministic=true",
    "test_after_fit=false",
    "model.schedule.warmup_epochs=1",
    "validation.children=[max,min]",
    "callbacks.checkpoint=null",
    "callbacks.periodic_checkpoint={_target_: lightning.pytorch.callbacks.ModelCheckpoint, "
    "every_n_train_steps: 2, save_top_k: -1, filename: 'step{step}', auto_insert_metric_name: false, "
    "dirpath: ${hydra:runtime.output_dir}/steps}",
]
# one dimension: its two kernels can only be split {3} | {5}, so max (k5) and min (k3) part ways
FEWSHOT = [
    "fewshot=gradient_matching",
    "fewshot.unit=steps",
    f"fewshot.warmup={SPLIT_STEP}",
    "fewshot.dimensions=[stage2.kernel]",
    "fewshot.batches=1",
    "fewshot.children=2",
]
QUICK = ["calib_batches=2", "latency.warmup=1", "latency.repeats=3", "device=cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _meta(ckpt: Path) -> dict:
    return torch.load(ckpt, weights_only=True)["supernet"]


@pytest.fixture(scope="module")
def fewshot_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fewshot")
    return out, train(out, [*COMMON, *FEWSHOT])


@pytest.fixture(scope="module")
def oneshot_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("oneshot")
    return out, train(out, COMMON)


# -- routing, splits and the optimizer state, without training ------------------------------------
def test_routing_follows_the_splits_in_order(tiny_space):
    torch.manual_seed(0)
    collection = SupernetCollection(tiny_space, 10, 1, 3)
    kernel, expand = tiny_space.dimension("stage2.kernel"), tiny_space.dimension("stage2.expand")
    assert all(collection.owner(tiny_space.sample(random.Random(i))) == 0 for i in range(20))  # before any split
    collection.split(0, Split(kernel.key, ((3,), (5,)), ((1.0, 0.0), (0.0, 1.0)), 0.0), 5, ())
    collection.split(1, Split(expand.key, ((2, 3), (4,)), ((1.0,) * 3,) * 3, 0.5), 9, ())
    assert collection.region(0) == {kernel: (3,)}
    assert collection.region(1) == {kernel: (5,), expand: (2, 3)}
    assert collection.region(2) == {kernel: (5,), expand: (4,)}
    gen = random.Random(0)
    for _ in range(50):  # every child goes to the one member whose part of the space holds it
        arch = tiny_space.sample(gen)
        owners = [m for m in range(3) if all(tiny_space.value(arch, d) in v for d, v in collection.region(m).items())]
        assert owners == [collection.owner(arch)]
        collection.set_arch(arch)
        assert collection.active == owners[0] and collection.members[owners[0]].arch == arch
    with pytest.raises(ValueError, match="all 3 members of the collection are in use"):
        collection.split(0, Split(expand.key, ((2,), (3,)), ((1.0, 0.0), (0.0, 1.0)), 0.0), 12, ())
    # the routing round-trips through the checkpoint's plain data
    again = SupernetCollection.from_state(tiny_space, 10, 1, json.loads(json.dumps(collection.state())))
    assert again.splits == collection.splits


def test_a_new_member_continues_its_parents_optimisation(tiny_space):
    torch.manual_seed(0)
    collection = SupernetCollection(tiny_space, 10, 1, 2)
    opt = torch.optim.SGD(collection.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 1, 24, 24), torch.randint(0, 10, (4,))

    def step(arch):
        opt.zero_grad(set_to_none=True)
        collection.set_arch(arch)
        torch.nn.functional.cross_entropy(collection(x), y).backward()
        opt.step()

    step(tiny_space.max())
    first, second = collection.members
    assert all(p not in opt.state for p in second.parameters())  # only member 0 trained
    kernel = tiny_space.dimension("stage2.kernel")
    collection.split(0, Split(kernel.key, ((3,), (5,)), ((1.0, 0.0), (0.0, 1.0)), 0.0), 1, ())
    copy_optimizer_state(opt, first, second)
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
        if p in opt.state:
            buf_p, buf_q = opt.state[p]["momentum_buffer"], opt.state[q]["momentum_buffer"]
            assert torch.equal(buf_p, buf_q) and buf_p.data_ptr() != buf_q.data_ptr()
    before = {p: opt.state[p]["momentum_buffer"].clone() for p in first.parameters() if p in opt.state}
    step(tiny_space.max())  # k5: member 1 only
    assert collection.active == 1
    assert all(torch.equal(opt.state[p]["momentum_buffer"], b) for p, b in before.items())


def test_a_schedule_splits_twice_inside_the_members_parts(tiny_space):
    torch.manual_seed(0)
    collection = SupernetCollection(tiny_space, 10, 1, 3)
    opt = torch.optim.SGD(collection.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    loader = [(torch.randn(8, 1, 24, 24, generator=gen), torch.randint(0, 10, (8,), generator=gen))]
    schedule = SplitSchedule(splits=2, dimensions=["stage2.kernel", "stage2.expand"], batches=1, children=1)
    first = schedule.split(collection, opt, loader, step=4)
    regions = {m: collection.region(m) for m in range(2)}
    second = schedule.split(collection, opt, loader, step=8)
    assert (first.parent, first.child, second.child) == (0, 1, 2) and second.parent in (0, 1)
    assert first.step == 4 and second.step == 8
    # the second split measured both members, each inside its part: a dimension that a member
    # holds at one value is no candidate there, and only the values a member holds are measured
    for member in range(2):
        measured = {s.dimension: [v for g in s.groups for v in g] for m, s in second.candidates if m == member}
        for key in ("stages[2].kernel", "stages[2].expand"):
            dim = tiny_space.dimension(key)
            held = list(regions[member].get(dim, dim.choices))
            assert measured.get(key) == (held if len(held) > 1 else None), (member, key)
    assert second.split.cut == min(s.cut for _, s in second.candidates)
    assert second.split in [s for m, s in second.candidates if m == second.parent]


# -- training: the warm-up is one-shot training, then each child trains on its owner ---------------
def test_warm_up_is_one_shot_training_bit_for_bit(fewshot_run, oneshot_run):
    """Before the split the collection trains member 0 exactly as one-shot training trains its
    supernet (same init, data, children, optimizer steps); the default config is one-shot."""
    (few, _), (one, one_result) = fewshot_run, oneshot_run
    assert not isinstance(one_result["module"].supernet, SupernetCollection)
    assert "fewshot" not in _meta(one / "checkpoints" / "last.ckpt")
    warm = torch.load(few / "steps" / "step2.ckpt", weights_only=True)["state_dict"]
    plain = torch.load(one / "steps" / "step2.ckpt", weights_only=True)["state_dict"]
    for key, value in plain.items():
        if key.startswith("supernet."):
            assert torch.equal(warm["supernet.members.0." + key[len("supernet.") :]], value), key
    # after the split the two runs part: the sub-supernets train different children
    after = torch.load(few / "steps" / "step4.ckpt", weights_only=True)["state_dict"]
    plain = torch.load(one / "steps" / "step4.ckpt", weights_only=True)["state_dict"]
    name = "stages.2.0.body.depthwise.conv.weight"
    assert not torch.equal(after[f"supernet.members.0.{name}"], plain[f"supernet.{name}"])


def test_the_split_is_recorded_in_the_checkpoint(fewshot_run):
    out, result = fewshot_run
    assert _meta(out / "steps" / "step2.ckpt")["fewshot"] == {"members": 2, "splits": []}
    state = _meta(out / "checkpoints" / "last.ckpt")["fewshot"]
    assert state == _meta(out / "steps" / "step4.ckpt")["fewshot"] == result["module"].supernet.state()
    (made,) = state["splits"]
    assert (made["parent"], made["child"], made["step"]) == (0, 1, SPLIT_STEP)
    assert made["dimension"] == "stages[2].kernel" and made["groups"] == [[3], [5]]
    sim = made["similarity"]
    assert sim[0][0] == sim[1][1] == 1.0 and sim[0][1] == sim[1][0] and -1.0 <= sim[0][1] < 1.0


def test_a_child_extracted_from_its_sub_supernet_is_exact(fewshot_run):
    out, _ = fewshot_run
    loaded = load_checkpoint(out / "checkpoints" / "last.ckpt")
    model, space = loaded.model, loaded.space
    assert isinstance(model, SupernetCollection) and isinstance(model, Supernet)
    big, small = space.max(), space.min()
    assert (model.owner(big), model.owner(small)) == (1, 0)  # the two sides of the split
    model.eval()
    gen = torch.Generator().manual_seed(0)
    for arch in (big, small):
        x = torch.randn(6, 1, arch.resolution, arch.resolution, generator=gen)
        with torch.no_grad():
            model.set_arch(arch)
            expected = model(x)
            child = model.extract(arch).eval()
            assert (child(x) - expected).abs().max() <= 1e-5
            other = model.members[1 - model.owner(arch)]  # the sub-supernet that does not own it
            other.set_arch(arch)
            assert (other(x) - expected).abs().max() > 1e-4


@pytest.mark.parametrize("at", [4, 2], ids=["after the split", "before the split"])
def test_exact_resume_across_the_split(fewshot_run, tmp_path, at):
    """Contract 3 with sub-supernets: a resume reaches the weights and split of the uninterrupted run."""
    full_dir, full = fewshot_run
    ckpt = full_dir / "steps" / f"step{at}.ckpt"
    resumed = train(tmp_path, [*COMMON, *FEWSHOT, f"ckpt_path={ckpt}"])
    assert resumed["module"].global_step == full["module"].global_step == 8
    assert resumed["module"].supernet.state() == full["module"].supernet.state()
    a, b = supernet_weights(full), supernet_weights(resumed)
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= 1e-6, worst


def test_resume_refuses_a_checkpoint_of_the_other_kind(fewshot_run, oneshot_run, tmp_path):
    (few, _), (one, _) = fewshot_run, oneshot_run
    with pytest.raises(ValueError, match="holds one supernet: resume with the fewshot="):
        train(tmp_path / "a", [*COMMON, *FEWSHOT, f"ckpt_path={one / 'checkpoints' / 'last.ckpt'}"])
    with pytest.raises(ValueError, match="holds a few-shot collection"):
        train(tmp_path / "b", [*COMMON, f"ckpt_path={few / 'checkpoints' / 'last.ckpt'}"])


# -- the commands that read a checkpoint -----------------------------------------------------------
def test_extract_and_evaluate_a_collection_checkpoint(fewshot_run, tmp_path):
    from hydra.utils import instantiate

    from supernet.cli.evaluate import run as evaluate
    from supernet.cli.extract import run as extract

    out, _ = fewshot_run
    ckpt = out / "checkpoints" / "last.ckpt"
    for arch in ("max", "min"):
        folder = tmp_path / arch
        cfg = compose_config(
            "extract", [f"ckpt_path={ckpt}", f"arch={arch}", f"out={folder}", "onnx=false", *QUICK], tmp_path
        )
        metrics = extract(cfg)
        assert metrics["max_abs_diff_vs_supernet"] <= 1e-5
        # the artifact computes what the collection computes after the same recalibration
        loaded = load_checkpoint(ckpt)
        ev = evaluator_for(loaded.model, instantiate(cfg.data), calib_batches=2, device=torch.device("cpu"))
        resolved = loaded.space.resolve(arch)
        ev.calibrate(resolved)
        x = resize_to(ev.calibration[0][0][:8], resolved.resolution)
        with torch.no_grad():
            assert (load(folder)(x) - loaded.model(x)).abs().max() <= 1e-5
    rows = evaluate(
        compose_config(
            "evaluate", [f"ckpt_path={ckpt}", "children=[max,min]", f"output={tmp_path / 't.csv'}", *QUICK], tmp_path
        )
    )
    assert len(rows) == 2 and all(0.0 <= float(r["val_acc"]) <= 1.0 for r in rows)
    assert {r["checkpoint_sha256"] for r in rows} == {load_checkpoint(ckpt).fingerprint}


# -- config errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["fewshot.dimensions=[stage9.kernel]"], "fewshot.dimensions: 'stage9.kernel' is not a dimension of space"),
        (["fewshot.dimensions=[stage0.kernel]"], "fewshot.dimensions: dimension stage0.kernel has one choice"),
        (["fewshot.splits=0"], "fewshot.splits=0 must be a positive integer"),
        (["fewshot.splits=3", "fewshot.dimensions=[stage2.kernel]"], "fewshot.splits=3 needs 4 sub-supernets"),
        (["fewshot.unit=hours"], "fewshot.unit='hours' is not one of"),
        (["fewshot.warmup=30"], "split 1 of 1 would come after 30 epochs .* at or beyond the end of training \\(30"),
    ],
)
def test_bad_fewshot_values_are_refused_in_one_line(tmp_path, overrides, message):
    from hydra.errors import InstantiationException

    from supernet.cli.validation import validate_train_config

    cfg = compose_config("train", ["fewshot=gradient_matching", *overrides], tmp_path)
    with pytest.raises((ValueError, InstantiationException)) as err:
        validate_train_config(cfg)
    cause = err.value.__cause__ if isinstance(err.value, InstantiationException) else err.value
    assert isinstance(cause, ValueError)
    assert re.search(message, str(cause)), str(cause)


def test_a_split_after_the_last_step_is_refused_when_training_starts(tmp_path):
    # 100 steps of warm-up in a run of 3 batches: only the data says how long the run is
    with pytest.raises(ValueError, match="would come after 100 steps .* end of training \\(3 steps\\)"):
        train(tmp_path, ["fewshot=gradient_matching", "fewshot.unit=steps", "fewshot.warmup=100"])


# -- DDP: every rank makes the same split -------------------------------------------------------------
class SplitRecorder(pl.Callback):
    """Writes this rank's routing (the splits made, with their similarities) to ``splits_rank<r>.json``."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir

    def on_train_end(self, trainer, pl_module):
        state = pl_module.supernet.state()
        Path(self.output_dir, f"splits_rank{trainer.global_rank}.json").write_text(json.dumps(state))


def test_every_rank_makes_the_same_split(tmp_path):
    """Each rank measures the gradients on its own shard of the batches; averaged across ranks
    before the similarities, they give every rank the same split, similarities included."""
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "supernet.train",
        f"hydra.run.dir={tmp_path}",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "validation.calib_batches=1",
        "validation.children=[max]",
        "test_after_fit=false",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        "data.batch_size=16",
        "fewshot=gradient_matching",
        "fewshot.unit=steps",
        "fewshot.warmup=1",
        "fewshot.dimensions=[stage1.kernel,stage2.kernel,stage2.expand]",
        "fewshot.batches=1",
        "fewshot.children=2",
        "+callbacks.split_recorder._target_=test_fewshot_collection.SplitRecorder",
        f"+callbacks.split_recorder.output_dir={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"splits_rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    (made,) = ranks[0]["splits"]
    assert made["step"] == 1 and len(made["candidates"]) == 3
    assert _meta(tmp_path / "checkpoints" / "last.ckpt")["fewshot"] == ranks[0]
