"""Block-bootstrap intervals of the walk-forward's metrics (blocks = trading days, so the
intraday dependence of minute data is kept).

The resampling is arch's (`arch.bootstrap.IIDBootstrap`, the field's reference
implementation) applied to the days: whole days are drawn with replacement, i.i.d. What arch
lacks is the day itself as the block: its moving, circular and stationary bootstraps cut
fixed-length (or geometric-length) blocks at any row, while trading days have unequal row
counts (gaps, half days) and a day boundary is where the intraday dependence ends.
tests/python/test_evaluation.py checks these intervals against arch's own percentile
intervals and against its circular block bootstrap with day-long blocks.

The scoreboard's paired intervals (`paired_mean_interval`) are arch's StationaryBootstrap
(Politis-Romano; geometric block lengths, mean one day = 1,440 minutes) over the minutes of
the test span: each minute carries the sum over pairs of a loss difference between two models
and the number of pairs it adds up, so the statistic (their ratio) is the pooled mean
difference, and the cross-pair dependence of one minute stays together. One day per block
because the loss of a 60-minute-ahead forecast shares 59 of its 60 future returns with the
next minute's and volatility clusters within the trading day; tests check it against arch
used directly and against a moving-block bootstrap written in numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from arch.bootstrap import IIDBootstrap, StationaryBootstrap

DAY_MINUTES = 1440


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
    with replacement and the statistics see the concatenated rows. Resamples whose statistic
    is not finite are left out; with fewer than half of them finite the interval is NaN.
    """
    values = np.atleast_1d(np.asarray(statistic(np.arange(len(blocks))), dtype=float))
    labels, inverse = np.unique(blocks, return_inverse=True)
    if len(labels) < 2 or n_resamples < 1:
        return [Interval(float(v), float("nan"), float("nan")) for v in values]
    order = np.argsort(inverse, kind="mergesort")
    bounds = np.r_[0, np.cumsum(np.bincount(inverse))]

    def on_blocks(picked: np.ndarray) -> np.ndarray:
        rows = np.concatenate([order[bounds[b] : bounds[b + 1]] for b in picked])
        return np.atleast_1d(np.asarray(statistic(rows), dtype=float))

    days = IIDBootstrap(np.arange(len(labels)), seed=seed)
    draws = days.apply(on_blocks, reps=n_resamples).reshape(n_resamples, len(values))
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


def paired_mean_interval(
    difference: np.ndarray,
    ts_epoch: np.ndarray,
    block_minutes: int = DAY_MINUTES,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: int = 7,
) -> Interval:
    """The mean of a per-row loss difference (model A − model B on the same rows) with a
    percentile interval from arch's stationary bootstrap over the rows' minutes (see the
    module docstring). Rows of several pairs at one minute are resampled together."""
    difference = np.asarray(difference, np.float64)
    if not len(difference):
        return Interval(float("nan"), float("nan"), float("nan"))
    minutes, slot = np.unique(np.asarray(ts_epoch), return_inverse=True)
    sums = np.bincount(slot, weights=difference)
    counts = np.bincount(slot).astype(np.float64)
    value = float(sums.sum() / counts.sum())
    if len(minutes) < 2 or n_resamples < 1:
        return Interval(value, float("nan"), float("nan"))

    def ratio(s: np.ndarray, c: np.ndarray) -> float:
        return float(s.sum() / c.sum())

    bootstrap = StationaryBootstrap(block_minutes, sums, counts, seed=seed)
    ci = bootstrap.conf_int(ratio, reps=n_resamples, method="percentile", size=level)
    return Interval(value, float(ci[0, 0]), float(ci[1, 0]))
