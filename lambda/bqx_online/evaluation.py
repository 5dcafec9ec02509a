"""How good the stored predictions were: MAE and directional accuracy of learned predictions
(those whose realized value is known), per pair and per period, read back from the store."""

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
