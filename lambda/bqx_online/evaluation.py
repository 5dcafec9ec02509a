"""How good the stored predictions were: MAE and directional accuracy of learned predictions
(those whose realized value is known), per pair and per period, read back from the store; and
a run's learned predictions as arrays (stored_stream), for replaying another weighting over
the stored members (ensemble.ensemble_replay)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from bqx.metrics import directional_accuracy, mae
from bqx_online.records import Prediction
from bqx_online.storage import PredictionReader


@dataclass(frozen=True)
class Score:
    n: int
    mae: float
    directional_accuracy: float  # bqx.metrics.directional_accuracy


def score(pairs: Iterable[tuple[float, float]]) -> Score:
    """Score (predicted, realized) pairs with the project's metrics (bqx.metrics)."""
    rows = np.array(list(pairs), dtype=np.float64).reshape(-1, 2)
    predicted, realized = rows[:, 0], rows[:, 1]
    return Score(len(rows), mae(realized, predicted), directional_accuracy(realized, predicted))


def learned_predictions(
    store: PredictionReader, pair: str, horizon: int, start: datetime, end: datetime
) -> list[Prediction]:
    """Predictions of [start, end) with a realized value (`store`: any store, or a read-only
    reader such as storage_postgres.PostgresPredictions)."""
    rows = store.predictions(pair, horizon, start - timedelta(seconds=1), end)
    return [p for p in rows if p.realized is not None and p.ts_utc < end]


def score_by_period(
    predictions: Sequence[Prediction],
    period_of: Callable[[datetime], str],
    value: Callable[[Prediction], float | None] = lambda p: p.prediction,
) -> dict[str, Score]:
    """Scores per period label (e.g. the ISO week); `value` picks which prediction to score."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for p in predictions:
        predicted = value(p)
        if predicted is None or p.realized is None:
            continue
        groups.setdefault(period_of(p.ts_utc), []).append((predicted, p.realized))
    return {label: score(rows) for label, rows in sorted(groups.items())}


@dataclass
class StoredStream:
    """One pair's learned predictions of a run, in learning order (rows: outcomes)."""

    names: list[str]  # member columns
    ts: np.ndarray  # prediction minute, epoch seconds
    prediction: np.ndarray  # the stored ensemble prediction
    members: np.ndarray  # stored member predictions
    y: np.ndarray  # the realized outcome (bqx_60 an hour later at the default horizon)
    known: np.ndarray  # outcomes learned before each row's minute (their learned_at < ts)


def stored_stream(predictions: Sequence[Prediction]) -> StoredStream:
    """StoredStream of learned predictions (realized and learned_at set), ts order."""
    names = list(predictions[0].member_predictions)
    if any(list(p.member_predictions) != names for p in predictions):
        raise ValueError("the members changed within the run: the replay needs one set")
    ts = np.array([p.ts_utc.timestamp() for p in predictions])
    learned_at = np.array([p.learned_at.timestamp() for p in predictions])
    if np.any(np.diff(learned_at) < 0):
        raise ValueError("outcomes were not learned in prediction order")
    return StoredStream(
        names,
        ts,
        np.array([p.prediction for p in predictions]),
        np.array([[p.member_predictions[n] for n in names] for p in predictions]),
        np.array([p.realized for p in predictions]),
        # a step predicts before it learns: row t sees what earlier steps learned
        np.searchsorted(learned_at, ts, side="left"),
    )
