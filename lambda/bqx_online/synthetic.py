"""A generated stream with a known relation between features and the 60-minute-ahead target,
and optionally a planted regime change: the oracle of the drift tests and benchmarks.

Features are AR(1) series (persistent, like bqx and volatility features). The outcome of the
prediction made at minute t is y(t) = w · x(t) + noise, stored as the realized value of minute
t + horizon (as bqx_t60 at t is bqx_60 at t + 60). From `change_at` on, w becomes `w_after`
(by default -w: the same features, the opposite meaning) and the noise `noise_after`. The
first outcome that reveals the change is known at change_at + horizon: that is where a drift
alarm's delay is counted from.

`overlap=True` makes the noise what it is for bqx_t60: the sum of the `horizon` one-minute
shocks after t, so outcomes of neighbouring minutes share horizon - 1 of them (lag-1
autocorrelation (h-1)/h ≈ 0.98 for h = 60), the property that breaks a drift detector's
independence assumption. `vol_after` multiplies the whole outcome (signal and noise) from
`change_at` on: a volatility change with the relation intact in volatility units, which a
skill-based drift monitor must not call concept drift. `signal=0` leaves pure noise, where no
member can beat predicting zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from bqx_online.features import MemoryFeatures


@dataclass(frozen=True)
class StreamSpec:
    start: datetime
    minutes: int
    n_features: int = 8
    horizon_minutes: int = 60
    persistence: float = 0.9  # AR(1) coefficient of each feature
    noise: float = 0.3
    change_at: int | None = None  # minute index of the planted change (None: stationary)
    change_scale: float = -1.0  # w_after = change_scale · w
    noise_after: float | None = None
    vol_after: float | None = None  # the outcome's scale from change_at on
    overlap: bool = False  # noise = sum of the next `horizon` shocks (overlapping horizons)
    signal: float = 1.0  # scale of w · x (0: no signal)
    seed: int = 0


def feature_names(n: int) -> list[str]:
    return [f"x{i}" for i in range(n)]


def generate(spec: StreamSpec, pairs: Sequence[str]) -> MemoryFeatures:
    source = MemoryFeatures(feature_names(spec.n_features))
    start_epoch = int(spec.start.timestamp())
    for k, pair in enumerate(pairs):
        rng = np.random.default_rng([spec.seed, k])
        x = np.empty((spec.minutes, spec.n_features))
        x[0] = rng.normal(size=spec.n_features)
        shocks = rng.normal(size=(spec.minutes, spec.n_features))
        scale = np.sqrt(1 - spec.persistence**2)
        for t in range(1, spec.minutes):
            x[t] = spec.persistence * x[t - 1] + scale * shocks[t]
        w = rng.normal(size=spec.n_features)
        w /= np.linalg.norm(w)
        w *= spec.signal
        y = x @ w + spec.noise * _noise(rng, spec)
        if spec.change_at is not None:
            after = slice(spec.change_at, None)
            noise = spec.noise if spec.noise_after is None else spec.noise_after
            y[after] = spec.change_scale * (x[after] @ w) + noise * _noise(rng, spec)[after]
            if spec.vol_after is not None:
                y[after] *= spec.vol_after
        ts = start_epoch + 60 * np.arange(spec.minutes, dtype=np.int64)
        source.add_pair(pair, ts, x, ts + 60 * spec.horizon_minutes, y)
    return source


def _noise(rng: np.random.Generator, spec: StreamSpec) -> np.ndarray:
    """Unit-variance noise: iid, or (overlap) the scaled sum of the next `horizon` shocks."""
    if not spec.overlap:
        return rng.normal(size=spec.minutes)
    h = spec.horizon_minutes
    shocks = rng.normal(size=spec.minutes + h)
    sums = np.convolve(shocks, np.ones(h), mode="valid")[1 : spec.minutes + 1]
    return sums / np.sqrt(h)


def minute(spec: StreamSpec, index: int) -> datetime:
    return spec.start + timedelta(minutes=index)
