"""Search a deployment engineer trusts (issue 16): the held-out search split, the Pareto search, the
prescreens, a point of the front taken by its row, and the refusals around them."""

import math
import random
from types import SimpleNamespace

import pytest
import torch

from supernet.child.table import write_rows
from supernet.data import ClutteredDigitsDataModule, DigitsDataModule
from supernet.metrics import complexity
from supernet.search import Constraints, EvolutionSettings, Search, best, pareto_front
from supernet.search.predictor import cross_validated_tau
from supernet.search.prescreen import PredictorPrescreen
from supernet.space import ArchError, load_space


class Toy:
    """A search problem without a model: accuracy grows with every choice, as cost does; ``noise``
    makes the score of each arch a fixed draw around that."""

    latency_settings, calib_batches = None, 1

    def __init__(self, space, noise: float = 0.0):
        self.space, self.noise, self.scored = space, noise, []

    def complexity(self, arch):
        return complexity(self.space, arch, in_chans=1, num_classes=10)

    def latency(self, arch) -> float:
        return self.complexity(arch).macs / 1e6

    def truth(self, arch) -> float:
        dims = [d for d in self.space.dimensions if len(d.choices) > 1]
        return sum(d.choices.index(self.space.value(arch, d)) / (len(d.choices) - 1) for d in dims) / len(dims)

    def score(self, arch, split: str):
        self.scored.append((arch, split))
        jitter = random.Random(str(arch)).gauss(0, self.noise) if self.noise else 0.0
        return SimpleNamespace(accuracy=self.truth(arch) + jitter, loss=1.0 - self.truth(arch))


# -- the search split -------------------------------------------------------------------------------


def _rows(dataset) -> set[bytes]:
    return {dataset[i][0].numpy().tobytes() for i in range(len(dataset))}


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: DigitsDataModule(**kw),
        lambda **kw: ClutteredDigitsDataModule(train_size=300, val_size=100, test_size=100, **kw),
    ],
    ids=["digits", "cluttered"],
)
def test_search_split_is_held_out_disjoint_and_the_same_for_every_run(make):
    """The search split comes out of the training split (training no longer sees it), shares no
    image with validation or test, and is the same whatever the training seed: every run, process
    and rank holds out the same images."""
    plain, held = make(search_size=0), make(search_size=60)
    plain.setup("fit"), held.setup("fit")
    assert len(held.search_set) == 60 and len(held.train_set) + 60 == len(plain.train_set)
    search, train = _rows(held.search_set), _rows(held.train_set)
    assert search <= _rows(plain.train_set) and not search & train
    assert not search & (_rows(held.val_set) | _rows(held.test_set))
    other = make(search_size=60, seed=7)  # another training seed (and another process or rank)
    other.setup("fit")
    assert other.search_indices == held.search_indices and other.search_split() == held.search_split()
    assert [int(i) for i in held.train_set[0][2:]] == [0]  # training indices stay 0..n-1 (PA&DA scores them)


def test_search_split_refusals():
    with pytest.raises(ValueError, match="search_size must be a non-negative integer"):
        DigitsDataModule(search_size=-1)
    too_many = DigitsDataModule(search_size=5000)
    with pytest.raises(ValueError, match="search_size=5000 must be below the 1259 training images"):
        too_many.setup("fit")
    none = DigitsDataModule()
    none.setup("fit")
    with pytest.raises(ValueError, match="holds out no search split"):
        none.search_dataloader()


# -- the Pareto search ------------------------------------------------------------------------------


def test_pareto_front_of_a_hand_made_table():
    rows = [  # (cost, accuracy): b and d are dominated, e ties c's cost with less accuracy
        ("a", 1.0, 0.50),
        ("b", 2.0, 0.40),
        ("c", 3.0, 0.70),
        ("d", 4.0, 0.65),
        ("e", 3.0, 0.60),
        ("f", 5.0, 0.80),
    ]
    front = pareto_front(rows, cost=lambda r: r[1], value=lambda r: r[2])
    assert [r[0] for r in front] == ["a", "c", "f"]


def _front_area(front, low: float, high: float) -> float:
    """The mean over log cost, from ``low`` to ``high``, of the best accuracy the front offers at
    that cost or below (0 below its cheapest point): how good the front is across the range."""
    area, best_so_far, previous = 0.0, 0.0, math.log(low)
    for c in front:
        area += (math.log(c.macs) - previous) * best_so_far
        best_so_far, previous = max(best_so_far, c.acc), math.log(c.macs)
    return (area + (math.log(high) - previous) * best_so_far) / (math.log(high) - math.log(low))


def test_pareto_search_finds_a_better_front_across_the_cost_range():
    """At the same budget, a Pareto search (a constrained search per log-cost bin) offers a better
    child at every budget on average than an accuracy search, which breeds only from its most
    accurate, costly archs; its front reaches the cheapest bin."""
    space = load_space("tiny")
    settings = EvolutionSettings(population=8, iterations=6, parents=2)
    low, high = (complexity(space, a, in_chans=1, num_classes=10).macs for a in (space.min(), space.max()))
    areas = {"accuracy": [], "macs": []}
    for seed in range(3):
        for objective in areas:
            search = Search(space, Toy(space), Constraints(), objective=objective, bins=4)
            scored = search.evolution(settings, seed)
            assert len(scored) == settings.budget
            front = search.front(scored)
            assert all(a.macs < b.macs and a.fitness < b.fitness for a, b in zip(front, front[1:]))
            areas[objective].append(_front_area(front, low, high))
            if objective == "macs":
                assert front[0].macs <= low * (high / low) ** 0.25  # a point in the cheapest bin
    assert sum(areas["macs"]) > sum(areas["accuracy"]), areas


def test_latency_objective_measures_every_scored_arch():
    space = load_space("tiny")
    search = Search(space, Toy(space), Constraints(), objective="latency", bins=4)
    scored = search.evolution(EvolutionSettings(population=4, iterations=2, parents=2), seed=0)
    assert all(c.latency_ms is not None for c in scored)
    front = search.front(scored)
    assert [c.latency_ms for c in front] == sorted(c.latency_ms for c in front)


def test_search_refuses_bad_objective_and_bins():
    space = load_space("tiny")
    with pytest.raises(ValueError, match="objective='flops' is not one of"):
        Search(space, Toy(space), Constraints(), objective="flops")
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        Search(space, Toy(space), Constraints(), objective="macs", bins=0)


# -- prescreens -------------------------------------------------------------------------------------


class Oracle:
    """A prescreen that knows the toy's truth; counts the archs it ranked."""

    def __init__(self, toy):
        self.toy, self.ranked = toy, 0

    def scores(self, archs, measured):
        self.ranked += len(archs)
        return [self.toy.truth(a) for a in archs]


def test_a_prescreen_keeps_the_measured_budget_and_spends_it_on_what_it_ranks_highest():
    space = load_space("tiny")
    settings = EvolutionSettings(population=6, iterations=3, parents=3, pool=4)
    gains = []
    for seed in range(3):
        plain_toy, screened_toy = Toy(space), Toy(space)
        oracle = Oracle(screened_toy)
        plain = Search(space, plain_toy, Constraints()).evolution(settings, seed)
        screened = Search(space, screened_toy, Constraints()).evolution(settings, seed, prescreen=oracle)
        assert len(plain_toy.scored) == len(screened_toy.scored) == settings.budget
        assert oracle.ranked == settings.budget * settings.pool
        gains.append(best(screened).acc - best(plain).acc)
    assert all(g >= 0 for g in gains) and sum(gains) > 0, gains


def test_predictor_prescreen_waits_for_enough_children_then_ranks():
    space = load_space("tiny")
    toy = Toy(space)
    gen = random.Random(0)
    archs = list({space.sample(gen): None for _ in range(40)})
    prescreen = PredictorPrescreen(space, "gbt", seed=0, min_pairs=8)
    measured = [SimpleNamespace(arch=a, acc=toy.truth(a)) for a in archs[:5]]
    assert prescreen.scores(archs[20:], measured) is None
    measured = [SimpleNamespace(arch=a, acc=toy.truth(a)) for a in archs[:20]]
    predicted = prescreen.scores(archs[20:], measured)
    from supernet.metrics.ranking import kendall_tau

    assert kendall_tau(predicted, [toy.truth(a) for a in archs[20:]]) > 0.5
    with pytest.raises(ValueError, match="predictor model 'forest' is not known"):
        PredictorPrescreen(space, "forest")


def test_cross_validated_tau_predicts_each_child_from_a_fit_without_it():
    space = load_space("tiny")
    toy = Toy(space, noise=0.02)
    gen = random.Random(1)
    pairs = [(a, toy.score(a, "search").accuracy) for a in {space.sample(gen): None for _ in range(60)}]
    tau = cross_validated_tau(space, pairs, "gbt", seed=0)
    assert 0.4 < tau <= 1.0 and tau == cross_validated_tau(space, pairs, "gbt", seed=0)
    shuffled = [(a, v) for (a, _), (_, v) in zip(pairs, random.Random(2).sample(pairs, len(pairs)))]
    assert abs(cross_validated_tau(space, shuffled, "gbt", seed=0)) < 0.3  # nothing to learn: no rank
    with pytest.raises(ValueError, match="needs at least 10 children"):
        cross_validated_tau(space, pairs[:9], "gbt")


# -- a point of the front by its row ----------------------------------------------------------------


def test_a_point_of_a_front_is_taken_by_its_row(tmp_path):
    space = load_space("tiny")
    archs = [space.min(), space.mid(), space.max()]
    table = tmp_path / "pareto.csv"
    write_rows(table, [{"point": i, "arch": str(a), "search_acc": 0.5} for i, a in enumerate(archs)])
    assert [space.resolve(f"{table}:{i}") for i in range(3)] == archs
    with pytest.raises(ArchError, match="has 3 row\\(s\\) of children: row 3 does not exist"):
        space.resolve(f"{table}:3")
    with pytest.raises(ArchError, match="needs a row number"):
        space.resolve(f"{table}:last")
    with pytest.raises(FileNotFoundError, match="table not found"):
        space.resolve(f"{tmp_path / 'none.csv'}:0")
    other = tmp_path / "other.csv"
    write_rows(other, [{"point": 0, "arch": "r99s8h64/w8d1k3e1"}])
    with pytest.raises(ArchError, match="other.csv row 0"):
        space.resolve(f"{other}:0")


def test_epsinas_prescreen_is_deterministic(tiny_space):
    from supernet.models import build
    from supernet.search.prescreen import EpsinasPrescreen

    torch.manual_seed(0)
    model = build(tiny_space, num_classes=10, in_chans=1)
    batch = torch.rand(8, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    archs = [tiny_space.min(), tiny_space.mid(), tiny_space.max()]
    first = EpsinasPrescreen(model, batch).scores(archs, [])
    assert first == EpsinasPrescreen(model, batch).scores(archs, []) and all(v == v for v in first)
