"""An accuracy predictor: a small scikit-learn regressor fit on children a run has already measured.

Archs are encoded ordinally (``encode``): one feature per searchable dimension of the space, the
index of the arch's value among that dimension's choices scaled to [0, 1]. The predictor learns
accuracy from these features, so a search can prescreen candidates and spend its measured budget
on promising ones; ``kendall_tau`` says how far its ranking can be trusted on held-out children.

A predictor file holds no model, only what makes one: the space, the training pairs (arch strings
and accuracies), the model kind, its hyper-parameters and seed. ``load`` refits from them, which
is deterministic, so nothing is ever unpickled from a file a user hands over.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supernet.files import atomic_file
from supernet.metrics.ranking import kendall_tau
from supernet.space import Arch, ArchError, Dimension, SearchSpace

FILE_FORMAT = "supernet-accuracy-predictor"
FILE_VERSION = 1

# Defaults sized for the tens to hundreds of children a run measures: shallow trees, a small
# learning rate. ``subsample`` stays 1.0 so that the fit depends on the seed only through ties.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "gbt": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05},
    "mlp": {"hidden_layer_sizes": [64, 64], "max_iter": 2000, "alpha": 1e-3},
}
MODEL_KINDS = tuple(DEFAULT_PARAMS)

Pair = tuple[Arch, float]


def encoded_dimensions(space: SearchSpace) -> list[Dimension]:
    """The dimensions that ``encode`` gives a feature: those with more than one choice (a single
    choice says nothing about a child)."""
    return [dim for dim in space.dimensions if len(dim.choices) > 1]


def feature_names(space: SearchSpace) -> list[str]:
    """The name of every feature of ``encode``, in order (``Dimension.key``)."""
    return [dim.key for dim in encoded_dimensions(space)]


def encode(space: SearchSpace, arch: Arch | str) -> np.ndarray:
    """The ordinal encoding of ``arch``: for each dimension with several choices, in the order of
    ``space.dimensions``, ``choices.index(value) / (len(choices) - 1)``. Raises ``ValueError``
    (``ArchError``) for an arch that is not a child of ``space``."""
    arch = space.resolve(Arch.parse(arch) if isinstance(arch, str) else arch)
    return np.array(
        [dim.choices.index(space.value(arch, dim)) / (len(dim.choices) - 1) for dim in encoded_dimensions(space)],
        dtype=float,
    )


def encode_all(space: SearchSpace, archs: Iterable[Arch | str]) -> np.ndarray:
    """The encodings of ``archs`` as the rows of one matrix."""
    rows = [encode(space, arch) for arch in archs]
    return np.array(rows, dtype=float).reshape(len(rows), len(encoded_dimensions(space)))


def _make_regressor(kind: str, params: Mapping[str, Any], seed: int):
    if kind == "gbt":
        from sklearn.ensemble import GradientBoostingRegressor as Regressor
    else:
        from sklearn.neural_network import MLPRegressor as Regressor
    try:
        return Regressor(random_state=seed, **params)
    except TypeError as err:  # an unknown keyword: name it as a setting, not as a crash
        raise ValueError(f"predictor model {kind!r}: bad hyper-parameters {dict(params)!r} ({err})") from None


def _check_settings(kind: str, params: Mapping[str, Any], seed: Any) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"predictor model {kind!r} is not known; use one of {list(MODEL_KINDS)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"predictor seed must be an integer, got {seed!r}")
    try:  # the settings are saved as JSON: refuse now what could not be saved later
        json.dumps(dict(params), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"predictor hyper-parameters must be plain JSON values ({err}): {dict(params)!r}") from None


class AccuracyPredictor:
    """Predicts a child's accuracy from its ordinal encoding.

    ``model`` is ``"gbt"`` (scikit-learn's ``GradientBoostingRegressor``) or ``"mlp"``
    (``MLPRegressor``); ``params`` override ``DEFAULT_PARAMS[model]``; ``seed`` is the model's
    ``random_state``. Fit with ``fit(pairs)``, pairs of (arch, accuracy).
    """

    def __init__(self, space: SearchSpace, model: str = "gbt", params: Mapping[str, Any] | None = None, seed: int = 0):
        params = {**DEFAULT_PARAMS.get(model, {}), **dict(params or {})}
        _check_settings(model, params, seed)
        self.space, self.model, self.params, self.seed = space, model, params, seed
        self.archs: list[Arch] = []
        self.accuracies: list[float] = []
        self._regressor = None

    def _check_arch(self, arch: Arch | str) -> Arch:
        try:
            # an arch string is parsed, never taken as a spec: a string naming a YAML file is not read
            return self.space.resolve(Arch.parse(arch) if isinstance(arch, str) else arch)
        except ArchError as err:
            raise ValueError(f"the predictor is for space {self.space.name!r}: {err}") from None

    def fit(self, pairs: Iterable[tuple[Arch | str, float]]) -> AccuracyPredictor:
        """Fit on (arch, accuracy) pairs (at least two, finite accuracies); returns ``self``."""
        archs, accuracies = [], []
        for arch, value in pairs:
            try:
                accuracy = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"accuracy of {arch} is {value!r}, not a number") from None
            if not math.isfinite(accuracy):
                raise ValueError(f"accuracy of {arch} is {accuracy}: fit on measured children only")
            archs.append(self._check_arch(arch))
            accuracies.append(accuracy)
        if len(archs) < 2:
            raise ValueError(f"a predictor needs at least 2 measured children to fit, got {len(archs)}")
        regressor = _make_regressor(self.model, self.params, self.seed)
        try:
            regressor.fit(encode_all(self.space, archs), np.array(accuracies, dtype=float))
        except TypeError as err:  # scikit-learn's check of a hyper-parameter's value
            raise ValueError(f"predictor model {self.model!r}: bad hyper-parameters ({err})") from None
        self.archs, self.accuracies, self._regressor = archs, accuracies, regressor
        return self

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` (or ``load``) has given the predictor a model."""
        return self._regressor is not None

    def predict(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """Predicted accuracies of ``archs``, in order (an empty array for none)."""
        if not self.fitted:
            raise ValueError("the predictor is not fitted: call fit(pairs) or load a predictor file")
        archs = [self._check_arch(arch) for arch in archs]
        if not archs:
            return np.zeros(0)
        return np.asarray(self._regressor.predict(encode_all(self.space, archs)), dtype=float)

    def kendall_tau(self, pairs: Sequence[tuple[Arch | str, float]]) -> float:
        """Kendall tau-b between predicted and measured accuracy on ``pairs`` (children held out of
        the fit, at least two): how well the predictor ranks children it has not seen."""
        if len(pairs) < 2:
            raise ValueError(f"Kendall tau needs at least 2 held-out children, got {len(pairs)}")
        predicted = self.predict([arch for arch, _ in pairs])
        return kendall_tau(predicted, [float(accuracy) for _, accuracy in pairs])

    # -- persistence (JSON: the data and settings, never a pickled model) -------------------------
    def to_dict(self) -> dict[str, Any]:
        """What a predictor file holds: the space, the settings and the training pairs."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "space": self.space.to_dict(),
            "model": self.model,
            "params": self.params,
            "seed": self.seed,
            "archs": [str(arch) for arch in self.archs],
            "accuracies": self.accuracies,
        }

    def save(self, path: str | Path) -> Path:
        """Write the predictor as JSON (atomically): its space, settings and training pairs. A
        predictor file is its data and settings; ``load`` refits the same model from them."""
        if not self.fitted:
            raise ValueError("the predictor is not fitted: nothing to save")
        path = Path(path)
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None) -> AccuracyPredictor:
        """The predictor saved at ``path``, refit from its training pairs with its settings (the
        fit is deterministic: the same predictions as the saved one). With ``space``, a file made
        for another space is refused."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"predictor file not found: {path}")
        try:
            doc = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a predictor file (not JSON: {err})") from None
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise ValueError(f"{path} is not a predictor file (no 'format': {FILE_FORMAT!r})")
        if doc.get("version") != FILE_VERSION:
            raise ValueError(f"{path} is a predictor file of version {doc.get('version')!r}; this reads {FILE_VERSION}")
        try:
            saved_space = SearchSpace.from_dict(doc.get("space"))
        except ValueError as err:
            raise ValueError(f"{path}: its 'space' is not a search space ({err})") from None
        if space is not None and saved_space != space:
            raise ValueError(
                f"{path} is a predictor for space {saved_space.name!r}, which differs from space {space.name!r}"
            )
        archs, accuracies = doc.get("archs"), doc.get("accuracies")
        if not isinstance(archs, list) or not isinstance(accuracies, list) or len(archs) != len(accuracies):
            raise ValueError(f"{path}: 'archs' and 'accuracies' must be lists of equal length")
        if not isinstance(doc.get("params"), dict):
            raise ValueError(f"{path}: 'params' must be a mapping of hyper-parameters")
        try:
            predictor = cls(saved_space, doc.get("model"), doc["params"], doc.get("seed"))
            return predictor.fit(zip(archs, accuracies))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def _recorded_space_differs(cell: str, space: SearchSpace) -> bool:
    """Whether a table's ``space`` cell (a space name, or its declaration as JSON) names another space."""
    try:
        recorded = json.loads(cell)
    except json.JSONDecodeError:
        return cell != space.name
    if isinstance(recorded, Mapping):
        return recorded != space.to_dict()
    return str(recorded) != space.name


def _table_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path} is not a readable CSV table ({err})") from None


def read_pairs(path: str | Path, space: SearchSpace, column: str = "val_acc") -> list[Pair]:
    """The (arch, accuracy) pairs of a table of children (the CSV of ``supernet-evaluate``,
    ``history.csv`` or ``pareto.csv`` of ``supernet-search``): the ``arch`` column and the
    accuracy ``column``. Rows whose accuracy is empty or NaN (not measured) are skipped.

    Raises ``ValueError`` naming the file for a table that is not one of children, lacks
    ``column``, records another space (a ``space`` column, where the table has one), or holds an
    arch that is not a child of ``space``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path}")
    rows = _table_rows(path)
    if not rows:
        raise ValueError(f"{path} holds no rows of children")
    missing = [c for c in ("arch", column) if c not in rows[0]]
    if missing:
        raise ValueError(f"{path} has no {missing} column(s); its columns are {list(rows[0])}")
    pairs: list[Pair] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        recorded = (row.get("space") or "").strip()
        if recorded and _recorded_space_differs(recorded, space):
            raise ValueError(f"{path} line {line}: the table was made for another space than {space.name!r}")
        try:
            # parsed, not resolved from any spec: a cell naming a YAML file is not read
            arch = space.resolve(Arch.parse(row["arch"] or ""))
        except ArchError as err:
            raise ValueError(f"{path} line {line}: not a table of space {space.name!r}: {err}") from None
        cell = (row[column] or "").strip()
        if not cell:
            continue
        try:
            accuracy = float(cell)
        except ValueError:
            raise ValueError(f"{path} line {line}: {column}={cell!r} is not a number") from None
        if math.isfinite(accuracy):
            pairs.append((arch, accuracy))
    return pairs


def cross_validated_tau(
    space: SearchSpace, pairs: Sequence[tuple[Arch | str, float]], model: str = "gbt", seed: int = 0, folds: int = 5
) -> float:
    """Kendall tau between measured accuracy and the accuracy predicted by a predictor fit on the
    other folds (each pair predicted once, by a fit that did not see it): how far the predictor
    ranks children it has not seen. The folds are a seeded shuffle of ``pairs``."""
    if len(pairs) < 2 * folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {2 * folds} children, got {len(pairs)}")
    order = np.random.default_rng(seed).permutation(len(pairs))
    predicted = np.empty(len(pairs))
    for fold in np.array_split(order, folds):
        held = set(fold.tolist())
        fit = AccuracyPredictor(space, model, seed=seed).fit(p for i, p in enumerate(pairs) if i not in held)
        predicted[fold] = fit.predict([pairs[i][0] for i in fold])
    return kendall_tau(predicted, [float(accuracy) for _, accuracy in pairs])
