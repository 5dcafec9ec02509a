"""Chronological walk-forward folds with an embargo, for `bqx evaluate`.

The test blocks tile the span after the train period of bqx.ml_periods (its validation and
test periods), so the choices fitted once on that train period (cross-pair sisters, the
autoencoder behind the embeddings) never saw a test row. Fold k tests on block k and trains
on an expanding window: every row up to `embargo_minutes` before the block starts. The embargo
(the longest look-back, 690 minutes, plus the 60-minute horizon) keeps the last training
target and the first test row's feature windows apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from bqx.errors import BqxUserError

MIN_EMBARGO_MINUTES = 690 + 60


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: train on [train_start, train_end), test on [test_start, test_end)."""

    number: int  # 1, 2, …
    train_start: datetime
    train_end: datetime
    test_start: datetime
    test_end: datetime

    @property
    def embargo(self) -> timedelta:
        return self.test_start - self.train_end

    def train_mask(self, ts_epoch: np.ndarray) -> np.ndarray:
        return _between(ts_epoch, self.train_start, self.train_end)

    def test_mask(self, ts_epoch: np.ndarray) -> np.ndarray:
        return _between(ts_epoch, self.test_start, self.test_end)


def _between(ts_epoch: np.ndarray, start: datetime, end: datetime) -> np.ndarray:
    return (ts_epoch >= int(start.timestamp())) & (ts_epoch < int(end.timestamp()))


def walk_forward_folds(
    span_start: datetime,
    first_test_start: datetime,
    span_end: datetime,
    n_folds: int,
    embargo_minutes: int,
) -> list[Fold]:
    """`n_folds` equal test blocks tiling [first_test_start, span_end), expanding training."""
    if n_folds < 1:
        raise BqxUserError(f"--folds must be at least 1, got {n_folds}")
    if embargo_minutes < MIN_EMBARGO_MINUTES:
        raise BqxUserError(
            f"an embargo of {embargo_minutes} minutes is shorter than the longest look-back "
            f"plus the horizon ({MIN_EMBARGO_MINUTES})"
        )
    embargo = timedelta(minutes=embargo_minutes)
    if first_test_start - embargo <= span_start or span_end <= first_test_start:
        raise BqxUserError(
            "no room for walk-forward folds: the data span is too short for the train period, "
            "the embargo and a test block (use more data)"
        )
    step = (span_end - first_test_start) / n_folds
    edges = [first_test_start + step * k for k in range(n_folds)] + [span_end]
    return [
        Fold(k + 1, span_start, edges[k] - embargo, edges[k], edges[k + 1]) for k in range(n_folds)
    ]
