"""Scores of the walk-forward: per pair and pooled ('ALL'), per fold and over all folds.

Forecast metrics use every test minute. The trading view uses on-the-hour entries only, so
the 60-minute holds never overlap; the pooled trading line is an equal-weight portfolio of
the pairs (mean PnL of the pairs trading at each entry). Intervals (fold 'all' only) come from
a block bootstrap over trading days; the IC's resamples reuse the full sample's ranks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bqx.metrics import (
    directional_accuracy,
    hit_rate,
    max_drawdown,
    pearson,
    r2,
    ranks,
    sharpe,
    trade_pnl,
)
from models_ml.evaluation.bootstrap import Interval, block_bootstrap

POOLED = "ALL"
ALL_FOLDS = "all"
DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600


@dataclass(frozen=True)
class ResultRow:
    stage: str
    model: str
    pair: str
    fold: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class Scored:
    """Test rows of one (stage, model) across pairs and folds (parallel arrays)."""

    pair: np.ndarray
    fold: np.ndarray
    ts_epoch: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    log_return: np.ndarray
    cost: np.ndarray

    def take(self, rows: np.ndarray) -> Scored:
        return Scored(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


class Collector:
    """Gathers test rows per (stage, model); only rows with a finite prediction count."""

    def __init__(self) -> None:
        self.chunks: dict[tuple[str, str], list[Scored]] = defaultdict(list)

    def add(self, key: tuple[str, str], pair: str, fold: int, **arrays: np.ndarray) -> None:
        keep = np.isfinite(arrays["prediction"]) & np.isfinite(arrays["target"])
        n = int(keep.sum())
        if n == 0:
            return
        self.chunks[key].append(
            Scored(
                pair=np.full(n, pair),
                fold=np.full(n, fold),
                **{name: np.asarray(values)[keep] for name, values in arrays.items()},
            )
        )

    def scored(self, key: tuple[str, str]) -> Scored | None:
        chunks = self.chunks.get(key)
        if not chunks:
            return None
        return Scored(
            *(np.concatenate([getattr(c, f) for c in chunks]) for f in Scored.__dataclass_fields__)
        )


def forecast_intervals(s: Scored, n_resamples: int, seed: int) -> dict[str, Interval]:
    y_rank, p_rank = ranks(s.target), ranks(s.prediction)

    def stats(rows: np.ndarray) -> list[float]:
        y, p = s.target[rows], s.prediction[rows]
        return [r2(y, p), directional_accuracy(y, p), pearson(y_rank[rows], p_rank[rows])]

    found = block_bootstrap(stats, s.ts_epoch // DAY_SECONDS, n_resamples, seed=seed)
    return dict(zip(("r2", "directional_accuracy", "ic"), found, strict=True))


def trading_series(s: Scored) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entry minute, PnL, traded) per entry: one pair's trades, or the pairs' portfolio."""
    entries = (s.ts_epoch % HOUR_SECONDS == 0) & np.isfinite(s.log_return) & np.isfinite(s.cost)
    e = s.take(entries)
    pnl = trade_pnl(e.prediction, e.log_return, e.cost)
    traded = e.prediction != 0
    if len(np.unique(e.pair)) <= 1:
        order = np.argsort(e.ts_epoch, kind="mergesort")
        return e.ts_epoch[order], pnl[order], traded[order]
    times, slot = np.unique(e.ts_epoch, return_inverse=True)
    portfolio = np.bincount(slot, weights=pnl) / np.bincount(slot)
    return times, portfolio, np.bincount(slot, weights=traded) > 0


def trading_intervals(s: Scored, n_resamples: int, seed: int) -> dict[str, Interval]:
    times, pnl, traded = trading_series(s)
    if len(pnl) < 2:
        nan = Interval(float("nan"), float("nan"), float("nan"))
        return {"sharpe": nan, "hit_rate": nan, "max_drawdown": nan}

    def stats(rows: np.ndarray) -> list[float]:
        return [sharpe(pnl[rows]), hit_rate(pnl[rows], traded[rows])]

    found = block_bootstrap(stats, times // DAY_SECONDS, n_resamples, seed=seed)
    out = dict(zip(("sharpe", "hit_rate"), found, strict=True))
    out["max_drawdown"] = Interval(max_drawdown(pnl), float("nan"), float("nan"))
    out["n_trades"] = Interval(float(traded.sum()), float("nan"), float("nan"))
    return out


def score_group(
    s: Scored, stage: str, model: str, pair: str, fold: str, n_resamples: int, seed: int
) -> list[ResultRow]:
    found = {"n_rows": Interval(float(len(s.target)), float("nan"), float("nan"))}
    found |= forecast_intervals(s, n_resamples, seed)
    found |= trading_intervals(s, n_resamples, seed)
    return [
        ResultRow(stage, model, pair, fold, metric, _none(i.value), _none(i.low), _none(i.high))
        for metric, i in found.items()
    ]


def _none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def summarize(
    collector: Collector, keys: list[tuple[str, str]], n_resamples: int, seed: int
) -> list[ResultRow]:
    """Every (stage, model) × (each pair, ALL) × (each fold, all); intervals for 'all'."""
    rows: list[ResultRow] = []
    for stage, model in keys:
        s = collector.scored((stage, model))
        if s is None:
            continue
        for pair in [*sorted(set(s.pair.tolist())), POOLED]:
            of_pair = s if pair == POOLED else s.take(s.pair == pair)
            rows += score_group(of_pair, stage, model, pair, ALL_FOLDS, n_resamples, seed)
            for fold in sorted(set(of_pair.fold.tolist())):
                one = of_pair.take(of_pair.fold == fold)
                rows += score_group(one, stage, model, pair, str(fold), 0, seed)
    return rows
