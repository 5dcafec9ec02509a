"""Independent numpy re-implementation of the base features of DESIGN.md, for the tests.

Written from the definitions, not from the SQL: a grid with forward fill for gaps of at most
60 missing minutes, segments restarting after longer gaps, np.polyfit for the regressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BQX_WINDOWS = (15, 30, 45, 60, 75, 90, 150, 240, 390, 630)
REG_WINDOWS = (60, 90, 150, 240, 390, 630)
VOL_WINDOWS = (30, 60, 90, 150, 240, 390, 630)
MAX_FILLED_GAP = 60  # missing minutes that are still forward-filled


@dataclass
class Grid:
    ts: pd.DatetimeIndex
    close: np.ndarray
    segment_start: np.ndarray  # index of the first row of each row's segment
    rate_index: np.ndarray


def minute_grid(bars: pd.DataFrame) -> Grid:
    """bars: ts_utc (UTC timestamps, sorted, unique), close. Returns the filled grid."""
    ts = pd.DatetimeIndex(bars["ts_utc"]).as_unit("ns")
    close = bars["close"].to_numpy(dtype=float)
    pieces_ts, pieces_close, starts = [], [], []
    gaps = np.diff(ts.asi8) // 60_000_000_000  # minutes to the next bar
    row = 0
    segment_first = 0
    for i in range(len(ts)):
        if i > 0 and gaps[i - 1] - 1 > MAX_FILLED_GAP:
            segment_first = row
        step = gaps[i] if i < len(gaps) and gaps[i] - 1 <= MAX_FILLED_GAP else 1
        pieces_ts.append(ts[i] + pd.to_timedelta(np.arange(step), unit="min"))
        pieces_close.append(np.full(step, close[i]))
        starts.append(np.full(step, segment_first))
        row += step
    grid_ts = pd.DatetimeIndex(np.concatenate([p.asi8 for p in pieces_ts])).tz_localize("UTC")
    grid_close = np.concatenate(pieces_close)
    return Grid(
        ts=grid_ts,
        close=grid_close,
        segment_start=np.concatenate(starts),
        rate_index=grid_close * 100 / close[0],
    )


def bqx(y: np.ndarray, i: int, w: int) -> float:
    past = y[i - w : i].mean()
    return 100 * (y[i] - past) / past


def quadratic_terms(values: np.ndarray) -> dict[str, float]:
    w = len(values)
    x = np.arange(w, dtype=float)
    a, b, c = np.polyfit(x, values, 2)
    prediction = a * (w - 1) ** 2 + b * (w - 1) + c
    fitted = a * x**2 + b * x + c
    sse = float(((values - fitted) ** 2).sum())
    sst = float(((values - values.mean()) ** 2).sum())
    return {
        "quadratic_term": a,
        "linear_term": b,
        "constant_term": c,
        "prediction": prediction,
        "residual": values[-1] - prediction,
        "r2": 1 - sse / sst if sst > 0 else 0.0,
        "rmse": np.sqrt(sse / w),
    }


def features_at(grid: Grid, i: int) -> dict[str, float]:
    """Every bqx, REG and vol feature of grid row i (all windows must be full)."""
    out: dict[str, float] = {}
    idx = grid.rate_index
    for w in BQX_WINDOWS:
        out[f"bqx_{w}"] = bqx(idx, i, w)
    bqx60 = np.array([bqx(idx, j, 60) for j in range(i - max(REG_WINDOWS) + 1, i + 1)])
    for w in REG_WINDOWS:
        for name, value in quadratic_terms(idx[i - w + 1 : i + 1]).items():
            out[f"reg_rate.w{w}_{name}"] = value
        for name, value in quadratic_terms(bqx60[-w:]).items():
            out[f"reg_bqx.w{w}_{name}"] = value
    log_returns = 100 * np.diff(np.log(grid.close[i - max(VOL_WINDOWS) : i + 1]))
    for w in VOL_WINDOWS:
        out[f"vol_{w}"] = float(np.std(log_returns[-w:], ddof=1))
    return out
