"""Every metric of the project, defined once: the walk-forward evaluation, the multi-task
report, the online learner's scores and the dashboard all call these functions.

Forecast metrics compare a prediction with its realized value: MAE, MSE, R² (1 − SSE/SST about the
realized mean; NaN when the realized values are constant), directional accuracy and the
information coefficient (Spearman rank correlation; across pairs, its mean and ICIR =
mean / sd of the pairs' ICs). Directional accuracy, the one the first
wave wrote four ways: the share of rows with a non-zero outcome whose sign the prediction got.
Rows whose outcome is exactly 0 (a tie) are left out; a prediction of exactly 0 takes no side
and counts as a miss, so the zero baseline scores 0.0 (never NaN) wherever something moved.
NaN means only that no outcome moved. tests/python/test_metrics.py pins these cases.

The trading view holds sign(prediction) for 60 minutes from on-the-hour entries
(non-overlapping), earning the pair's log return of close over those 60 minutes minus one
spread per trade; Sharpe is annualized with TRADING_HOURS_PER_YEAR.
"""

from __future__ import annotations

import numpy as np

TRADING_HOURS_PER_YEAR = 52 * 120  # FX trades ~120 hours a week (Sunday 22:00 - Friday 22:00)
FORECAST_METRICS = ("r2", "directional_accuracy", "ic")
TRADING_METRICS = ("sharpe", "hit_rate", "max_drawdown")


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error (NaN for no rows)."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    return float(np.mean(np.abs(pred - y))) if len(y) else float("nan")


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error (NaN for no rows): the loss the scoreboard's paired differences use
    for bqx_t60 and vol_t60."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    return float(np.mean((pred - y) ** 2)) if len(y) else float("nan")


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    """Root mean squared error (NaN for no rows)."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    return float(np.sqrt(np.mean((pred - y) ** 2))) if len(y) else float("nan")


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """1 − SSE/SST about the evaluated rows' own mean (NaN for < 2 rows or a constant y)."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    if len(y) < 2:
        return float("nan")
    sst = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if sst == 0 else 1.0 - float(np.sum((y - pred) ** 2)) / sst


def directional_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of rows with y ≠ 0 where sign(pred) = sign(y); pred = 0 is a miss; NaN when no
    y moved (see the module docstring)."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    moved = y != 0
    if not moved.any():
        return float("nan")
    return float(np.mean(np.sign(pred[moved]) == np.sign(y[moved])))


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of exact matches (class labels); NaN for no rows."""
    y = np.asarray(y)
    return float(np.mean(np.asarray(pred) == y)) if len(y) else float("nan")


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in y (a majority-class guess scores
    1/classes); NaN for no rows."""
    y = np.asarray(y)
    if not len(y):
        return float("nan")
    return float(np.mean([recall(y, pred, c) for c in np.unique(y)]))


def recall(y: np.ndarray, pred: np.ndarray, label: int) -> float:
    """Share of rows of class `label` predicted as it; NaN when y has none."""
    y, pred = np.asarray(y), np.asarray(pred)
    mine = y == label
    return float(np.mean(pred[mine] == label)) if mine.any() else float("nan")


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over the classes in y or pred (a class never
    predicted scores 0); NaN for no rows."""
    y, pred = np.asarray(y), np.asarray(pred)
    if not len(y):
        return float("nan")
    scores = []
    for c in np.union1d(y, pred):
        true_positive = float(np.sum((pred == c) & (y == c)))
        predicted, actual = float(np.sum(pred == c)), float(np.sum(y == c))
        scores.append(2 * true_positive / (predicted + actual))
    return float(np.mean(scores))


def log_losses(y: np.ndarray, proba: np.ndarray, eps: float = 1e-15) -> np.ndarray:
    """Per row, −log of the probability given to the realized class (rows of `proba` are the
    class probabilities, indexed by class code; clipped to [eps, 1])."""
    y = np.asarray(y, np.int64)
    proba = np.asarray(proba, np.float64)
    return -np.log(np.clip(proba[np.arange(len(y)), y], eps, 1.0))


def log_loss(y: np.ndarray, proba: np.ndarray, eps: float = 1e-15) -> float:
    """Mean of log_losses (NaN for no rows)."""
    return float(np.mean(log_losses(y, proba, eps))) if len(np.asarray(y)) else float("nan")


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
    """Pearson correlation of two vectors (NaN for < 2 rows or a constant side)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float("nan") if denominator == 0 else float(np.sum(a * b)) / denominator


def information_coefficient(y: np.ndarray, pred: np.ndarray) -> float:
    """Spearman rank correlation of forecast and outcome (the IC; NaN for a constant side)."""
    return pearson(ranks(y), ranks(pred))


def ic_summary(ics: np.ndarray) -> tuple[float, float]:
    """(mean IC, ICIR) over units (the pairs): ICIR = mean / standard deviation (ddof 1) of
    their ICs, the consistency of the signal across pairs; NaN ICs are left out, and the ICIR
    is NaN for fewer than two ICs or no spread."""
    ics = np.asarray(ics, np.float64)
    ics = ics[np.isfinite(ics)]
    if not len(ics):
        return float("nan"), float("nan")
    mean = float(np.mean(ics))
    sd = float(np.std(ics, ddof=1)) if len(ics) > 1 else 0.0
    return mean, (mean / sd if sd > 0 else float("nan"))


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
