"""Forecast and trading metrics of `bqx evaluate`, and their block-bootstrap intervals.

Forecast metrics compare a prediction of bqx_t60 with its realized value: R² (1 − SSE/SST
about the realized mean), directional accuracy (share of rows with a non-zero outcome whose
sign the prediction got; a zero prediction counts as a miss) and the information coefficient
(Spearman rank correlation). The trading view holds sign(prediction) for 60 minutes from
on-the-hour entries (non-overlapping), earning the pair's log return of close over those
60 minutes minus one spread per trade; Sharpe is annualized with TRADING_HOURS_PER_YEAR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

TRADING_HOURS_PER_YEAR = 52 * 120  # FX trades ~120 hours a week (Sunday 22:00 - Friday 22:00)
FORECAST_METRICS = ("r2", "directional_accuracy", "ic")
TRADING_METRICS = ("sharpe", "hit_rate", "max_drawdown")


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    if len(y) < 2:
        return float("nan")
    sst = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if sst == 0 else 1.0 - float(np.sum((y - pred) ** 2)) / sst


def directional_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    moved = y != 0
    if not moved.any() or not np.any(pred):
        return float("nan")  # no outcome moved, or a model that never takes a side
    return float(np.mean(np.sign(pred[moved]) == np.sign(y[moved])))


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as scipy.stats.rankdata."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(values)])
    average = first + (counts - 1) / 2.0 + 1.0
    out = np.empty(len(values))
    out[order] = average[group]
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float("nan") if denominator == 0 else float(np.sum(a * b)) / denominator


def information_coefficient(y: np.ndarray, pred: np.ndarray) -> float:
    return pearson(ranks(y), ranks(pred))


def trade_pnl(pred: np.ndarray, log_return: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """PnL per entry (log-return units) of holding sign(pred), net of one spread per trade."""
    position = np.sign(pred)
    return position * log_return - np.abs(position) * cost


def sharpe(pnl: np.ndarray, periods_per_year: float = TRADING_HOURS_PER_YEAR) -> float:
    if len(pnl) < 2:
        return float("nan")
    sd = float(np.std(pnl, ddof=1))
    return float("nan") if sd == 0 else float(np.mean(pnl)) / sd * float(np.sqrt(periods_per_year))


def hit_rate(pnl: np.ndarray, traded: np.ndarray) -> float:
    return float(np.mean(pnl[traded] > 0)) if traded.any() else float("nan")


def max_drawdown(pnl: np.ndarray) -> float:
    """Largest fall of the cumulative PnL from its running peak (≥ 0, log-return units)."""
    if len(pnl) == 0:
        return float("nan")
    equity = np.concatenate([[0.0], np.cumsum(pnl)])
    return float(np.max(np.maximum.accumulate(equity) - equity))


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def block_bootstrap(
    statistic: Callable[[np.ndarray], Sequence[float]],
    blocks: np.ndarray,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: int = 7,
) -> list[Interval]:
    """Percentile intervals of the statistics statistic(rows) under a block bootstrap.

    `blocks` labels each row with its block (a trading day: rows of one day stay together, so
    the intraday dependence of minute data is kept); as many blocks as observed are drawn
    with replacement and the statistics see the concatenated rows.
    """
    values = np.atleast_1d(np.asarray(statistic(np.arange(len(blocks))), dtype=float))
    labels, inverse = np.unique(blocks, return_inverse=True)
    if len(labels) < 2 or n_resamples < 1:
        return [Interval(float(v), float("nan"), float("nan")) for v in values]
    order = np.argsort(inverse, kind="mergesort")
    bounds = np.r_[0, np.cumsum(np.bincount(inverse))]
    rng = np.random.default_rng(seed)
    draws = np.empty((n_resamples, len(values)))
    for i in range(n_resamples):
        picked = rng.integers(0, len(labels), len(labels))
        rows = np.concatenate([order[bounds[b] : bounds[b + 1]] for b in picked])
        draws[i] = np.atleast_1d(np.asarray(statistic(rows), dtype=float))
    tail = (1 - level) / 2 * 100
    out = []
    for value, column in zip(values, draws.T, strict=True):
        finite = column[np.isfinite(column)]
        if len(finite) < n_resamples // 2:
            out.append(Interval(float(value), float("nan"), float("nan")))
            continue
        low, high = np.percentile(finite, [tail, 100 - tail])
        out.append(Interval(float(value), float(low), float(high)))
    return out
