"""The accuracy predictor: ordinal encoding, fit/predict, ranking, JSON persistence, refusals."""

import json
import math
import random

import numpy as np
import pytest

from supernet.child.table import write_rows
from supernet.metrics import ChildReport, complexity
from supernet.search import AccuracyPredictor, encode, read_pairs
from supernet.search.predictor import feature_names
from supernet.space import load_space


def synthetic_accuracy(space, arch) -> float:
    """A target that grows with every dimension, as accuracy roughly grows with multiply-adds."""
    return 0.5 + 0.05 * math.log(complexity(space, arch).macs)


def sampled(space, count, seed):
    gen, archs = random.Random(seed), {}
    while len(archs) < count:
        archs.setdefault(space.sample(gen), None)
    return list(archs)


@pytest.fixture(scope="module")
def pairs(tiny_space):
    return [(arch, synthetic_accuracy(tiny_space, arch)) for arch in sampled(tiny_space, 100, seed=0)]


def test_encoding_of_a_hand_made_arch(tiny_space):
    arch = tiny_space.resolve("r20s16h64/w8d2k3e1/w24d3k5e3/w24d1k3e4")
    # stage 0's kernel and expand have one choice each: no feature
    assert feature_names(tiny_space) == [
        "resolution",
        "stem",
        "head",
        "stages[0].width",
        "stages[0].depth",
        "stages[1].width",
        "stages[1].depth",
        "stages[1].kernel",
        "stages[1].expand",
        "stages[2].width",
        "stages[2].depth",
        "stages[2].kernel",
        "stages[2].expand",
    ]
    # resolution 20 of (16, 20, 24) -> 1/2; depth 3 of (1, 2, 3) -> 1; expand 3 of (2, 3, 4) -> 1/2
    expected = [0.5, 1, 0, 0, 1, 1, 1, 1, 0.5, 0, 0, 0, 1]
    np.testing.assert_array_equal(encode(tiny_space, arch), expected)
    np.testing.assert_array_equal(encode(tiny_space, str(arch)), expected)
    assert encode(tiny_space, tiny_space.min()).sum() == 0
    assert (encode(tiny_space, tiny_space.max()) == 1).all()


def test_ranks_held_out_children_of_a_monotone_target(tiny_space, pairs):
    train, held_out = pairs[:60], pairs[60:]
    predictor = AccuracyPredictor(tiny_space).fit(train)
    assert predictor.kendall_tau(held_out) > 0.5
    # a ranking reversed by hand is reported as such: the tau reads the pairs given
    reversed_truth = [(arch, -acc) for arch, acc in held_out]
    assert predictor.kendall_tau(reversed_truth) < -0.5


@pytest.mark.parametrize("model, params", [("gbt", {"n_estimators": 50}), ("mlp", {"max_iter": 300})])
def test_save_load_round_trip_predicts_the_same(tiny_space, pairs, tmp_path, model, params):
    predictor = AccuracyPredictor(tiny_space, model=model, params=params, seed=3).fit(pairs[:40])
    path = predictor.save(tmp_path / "predictor.json")
    doc = json.loads(path.read_text())  # plain JSON: data and settings, no pickled model
    assert doc["space"] == tiny_space.to_dict()
    assert doc["archs"] == [str(arch) for arch, _ in pairs[:40]]
    assert doc["accuracies"] == [acc for _, acc in pairs[:40]]
    assert (doc["model"], doc["seed"]) == (model, 3)
    assert all(doc["params"][key] == value for key, value in params.items())

    loaded = AccuracyPredictor.load(path, space=tiny_space)
    queries = [arch for arch, _ in pairs[40:]]
    np.testing.assert_array_equal(loaded.predict(queries), predictor.predict(queries))


def test_refuses_another_space(tiny_space, pairs, tmp_path):
    other = load_space("mobilenet_cifar")
    predictor = AccuracyPredictor(tiny_space).fit(pairs[:20])
    with pytest.raises(ValueError, match="space 'tiny'"):
        predictor.predict([other.max()])
    with pytest.raises(ValueError, match="space 'tiny'"):
        AccuracyPredictor(tiny_space).fit([(other.max(), 0.9), (other.min(), 0.5)])
    # a predictor file of one space is refused for another
    path = predictor.save(tmp_path / "tiny.json")
    with pytest.raises(ValueError, match="differs from space 'mobilenet_cifar'"):
        AccuracyPredictor.load(path, space=other)


def evaluate_table(path, space, archs, accuracies, columns=None):
    """A table as ``supernet-evaluate`` writes it (``ChildReport`` rows), plus ``columns``."""
    rows = [
        ChildReport(arch, complexity(space, arch), val_acc=acc, val_loss=1 - acc).row(
            source="sample", **(columns or {})
        )
        for arch, acc in zip(archs, accuracies)
    ]
    write_rows(path, rows)
    return path


def test_reads_pairs_of_an_evaluate_table(tiny_space, tmp_path):
    archs = [tiny_space.min(), tiny_space.mid(), tiny_space.max()]
    path = evaluate_table(tmp_path / "children.csv", tiny_space, archs, [0.5, float("nan"), 0.875])
    # the child measured without a validation accuracy (NaN, an empty cell) is left out
    assert read_pairs(path, tiny_space) == [(archs[0], 0.5), (archs[2], 0.875)]
    with pytest.raises(ValueError, match="no \\['top5_acc'\\] column"):
        read_pairs(path, tiny_space, column="top5_acc")


def test_refuses_a_table_of_another_space(tiny_space, tmp_path):
    other = load_space("mobilenet_cifar")
    path = evaluate_table(tmp_path / "other.csv", other, [other.min(), other.max()], [0.5, 0.9])
    with pytest.raises(ValueError, match=r"other\.csv line 2: not a table of space 'tiny'"):
        read_pairs(path, tiny_space)
    # a table that records its space is refused on that record, even if its archs would fit
    archs = [tiny_space.min(), tiny_space.max()]
    path = evaluate_table(tmp_path / "named.csv", tiny_space, archs, [0.5, 0.9], {"space": "mobilenet_cifar"})
    with pytest.raises(ValueError, match="made for another space than 'tiny'"):
        read_pairs(path, tiny_space)
    path = evaluate_table(
        tmp_path / "same.csv", tiny_space, archs, [0.5, 0.9], {"space": json.dumps(tiny_space.to_dict())}
    )
    assert [arch for arch, _ in read_pairs(path, tiny_space)] == archs


def test_refuses_bad_settings_and_files(tiny_space, tmp_path):
    with pytest.raises(ValueError, match="predictor model 'forest' is not known"):
        AccuracyPredictor(tiny_space, model="forest")
    with pytest.raises(ValueError, match="not fitted"):
        AccuracyPredictor(tiny_space).predict([tiny_space.max()])
    with pytest.raises(ValueError, match="at least 2 measured children"):
        AccuracyPredictor(tiny_space).fit([(tiny_space.max(), 0.9)])
    bad = tmp_path / "bad.json"
    bad.write_text("\x80\x04 not json")
    with pytest.raises(ValueError, match="not a predictor file"):
        AccuracyPredictor.load(bad)
