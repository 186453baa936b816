import csv
from pathlib import Path

import pytest
import torch
from helpers import compose_config, image_folder, randomise_norms, supernet_weights, train

from supernet.cli.common import CONFIG_PATH, plain

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_PATH) / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment, tmp_path):
    cfg = compose_config("train", [f"experiment={experiment}"], tmp_path)
    from supernet.space import SearchSpace

    space = SearchSpace.from_dict(plain(cfg.space))
    from supernet.space.children import child_names

    for spec in child_names(plain(cfg.validation.children)).values():
        space.resolve(spec)
    assert cfg.trainer.max_epochs > 0 and cfg.data._target_.startswith("supernet.data.")


def test_fast_end_to_end_run(tmp_path):
    result = train(tmp_path, [])
    rows = {r["child"]: r for r in result["rows"]}
    assert set(rows) == {"max", "min", "mid", "random1"}
    assert all(0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0 for r in rows.values())
    assert rows["max"]["mmacs"] > rows["min"]["mmacs"]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    header = next(csv.reader(open(tmp_path / "logs" / "metrics.csv")))
    assert {"val/max/acc", "val/min/loss", "train/max/loss", "train/min/loss"} <= set(header)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["supernet"]["space"]["name"] == "tiny"
    assert ckpt["supernet"]["sampler"]["seed"] == 0


def _periodic(every: int):
    return [
        "+callbacks.recorder._target_=helpers.ChildRecorder",
        "callbacks.periodic_checkpoint={_target_: lightning.pytorch.callbacks.ModelCheckpoint, "
        f"every_n_train_steps: {every}, save_top_k: -1, filename: 'step{{step}}', auto_insert_metric_name: false, "
        "dirpath: ${hydra:runtime.output_dir}/steps}",
    ]


@pytest.mark.parametrize("data", ["digits", "augmented images"])
def test_exact_resume_mid_epoch(tmp_path, data):
    """Contract 3: resuming from a mid-epoch checkpoint reaches the weights and children of an
    uninterrupted run (CPU, deterministic) — also with random augmentations (random resized crop
    and flip of the image-folder loader), whose randomness comes from (seed, epoch, position)."""
    common = [
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=4",
        "trainer.deterministic=true",
        "test_after_fit=false",
        "model.schedule.warmup_epochs=1",
        *_periodic(5),
    ]
    if data != "digits":
        root = image_folder(tmp_path / "images")
        common += [
            "data=imagefolder",
            f"data.root={root}",
            "data.image_size=24",
            "data.batch_size=8",
            "data.val_size=8",
            "data.search_size=8",
        ]
    full = train(tmp_path / "full", common)
    ckpt = tmp_path / "full" / "steps" / "step5.ckpt"  # after 5 of 12 steps: mid-way through epoch 2
    assert ckpt.is_file()
    resumed = train(tmp_path / "resumed", [*common, f"ckpt_path={ckpt}"])
    a, b = supernet_weights(full), supernet_weights(resumed)
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= 1e-6, worst
    rec_full = next(c for c in full["trainer"].callbacks if type(c).__name__ == "ChildRecorder")
    rec_res = next(c for c in resumed["trainer"].callbacks if type(c).__name__ == "ChildRecorder")
    assert sorted(rec_res.steps) == list(range(5, 12))
    assert {s: rec_full.steps[s] for s in rec_res.steps} == rec_res.steps
    assert full["module"].global_step == resumed["module"].global_step == 12


def test_resume_refuses_checkpoint_of_another_space(tmp_path):
    train(tmp_path / "a", [])
    with pytest.raises(ValueError, match="differs from the configured space"):
        train(
            tmp_path / "b",
            [
                "space=mobilenet_cifar",
                f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
                "data=synthetic",
                "data.image_size=32",
            ],
        )


def test_pada_state_round_trips_through_checkpoint(tmp_path):
    result = train(tmp_path / "a", ["experiment=pada_digits", "trainer.max_epochs=2", "test_after_fit=false"])
    module = result["module"]
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    meta = ckpt["supernet"]
    assert meta["sampler"]["probs"] == module.sampler.probs
    assert meta["sampler"]["updates"] == 2
    assert torch.equal(meta["data_sampler"]["probs"], result["trainer"].datamodule.train_sampler.probs)
    assert not torch.allclose(
        meta["data_sampler"]["probs"],
        torch.full_like(meta["data_sampler"]["probs"], meta["data_sampler"]["probs"].mean()),
    )
    header = next(csv.reader(open(tmp_path / "a" / "logs" / "metrics.csv")))
    assert "pada/stages[1].width/entropy" in header and "pada/data/entropy" in header
    # resuming restores both distributions
    resumed = train(
        tmp_path / "b",
        [
            "experiment=pada_digits",
            "trainer.max_epochs=3",
            "test_after_fit=false",
            f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
        ],
    )
    assert resumed["module"].sampler._updates == 3


@pytest.mark.parametrize(
    "overrides",
    [
        ["sampler=attentive"],
        ["experiment=delayed_shrinking_digits"],
        ["distill=alpha_divergence"],
        ["sampler=spos", "distill=none"],
        ["experiment=spos_pada_cluttered", "data.train_size=200", "data.val_size=64", "data.test_size=64"],
        ["experiment=ofa_ps_cluttered", "data.train_size=200", "data.val_size=64", "data.test_size=64"],
    ],
)
def test_other_recipes_run(tmp_path, overrides):
    result = train(tmp_path, [*overrides, "test_after_fit=false"])
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in result["rows"])


def test_vit_recipe_uses_adamw(tmp_path):
    result = train(tmp_path, ["experiment=vit_digits", "test_after_fit=false"])
    assert type(result["trainer"].optimizers[0]).__name__ == "AdamW"


def test_validation_leaves_the_training_bn_statistics(tmp_path):
    """Validation recalibrates BN per child; the supernet must get its training statistics back,
    or checkpoints (and a resumed run) would depend on whether validation ran before the save."""
    from supernet.models.calibration import bn_state

    result = train(tmp_path, ["test_after_fit=false"])
    module, trainer = result["module"], result["trainer"]
    randomise_norms(module.supernet)  # statistics no calibration can reproduce
    before = bn_state(module.supernet)
    trainer.validate(module, datamodule=trainer.datamodule, verbose=False)
    after = bn_state(module.supernet)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_checkpoint_at_the_last_batch_of_an_epoch_holds_the_epoch_end_update(tmp_path):
    """A periodic (or SIGTERM) checkpoint saved at an epoch's last batch must already hold the
    samplers' epoch-end update: a run resumed from it does not run that batch again."""
    train(
        tmp_path,
        [
            "experiment=pada_digits",
            "trainer.max_epochs=1",
            "sampler.tau_schedule=constant",  # with tau = e/E the first update would change nothing
            "data_sampler.tau_schedule=constant",
            "test_after_fit=false",
            "callbacks.last_checkpoint.every_n_train_steps=3",
        ],
    )
    meta = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["supernet"]
    assert meta["sampler"]["updates"] == 1
    assert meta["data_sampler"]["probs"].std() > 0  # the data distribution was updated too


def test_a_run_limited_by_steps_only_schedules_over_those_steps(tmp_path):
    result = train(
        tmp_path,
        ["trainer.max_epochs=-1", "trainer.max_steps=7", "test_after_fit=false", "model.schedule.warmup_epochs=0"],
    )
    module = result["module"]
    assert result["trainer"].global_step == 7
    assert (module._schedule_total, module._schedule_epochs) == (7, 3)  # 3 batches per epoch
    factors = [module._lr_factor(s) for s in range(7)]
    assert factors[3] > factors[6]  # the LR still decays after the first epoch
