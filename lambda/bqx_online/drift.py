"""The drift monitor of one pair: river's Page-Hinkley test on the ensemble's skill, in units
of that skill's long-run standard deviation.

What it watches: u = (|y - ŷ| - |y|) / s, the ensemble's loss minus the zero member's, in
units of the target's trailing volatility s (AdaptiveEnsemble.skill). A raw absolute error
rises with volatility, so the old monitor (ADWIN and a 1.5 × MAE rule on |y - ŷ|) called every
volatility change concept drift; u is bounded by |ŷ| / s, so it rises when the model loses its
edge over saying nothing, not when the market gets louder.

Why not ADWIN on the raw stream: outcomes of overlapping 60-minute horizons share 59 of 60
future returns, so consecutive errors are nearly the same number (lag-1 autocorrelation 0.98
on a generated stream with overlapping horizons, bench/online.py), and ADWIN's cut test, which
assumes independent samples, sees each excursion as ~60 times more evidence than it is. Feeding
it every 60th error or 60-minute block means fixes that but caps the detection delay at an
hour or more (plan: 10 minutes). Here the test runs every minute, but its unit is the long-run
standard deviation σ_LR = sd(means of non-overlapping `block`-minute blocks) · √block, measured
on a baseline of `baseline_window` skill values: block means of 60 are close to independent
(measured lag-1 autocorrelation in bench/online.py), and partial sums of n ≤ 60 autocorrelated
values vary by at most √n · σ_LR, so the allowance and threshold mean for this stream what they
mean for an independent one. The baseline is set after the warm-up and again after each alarm
(the new regime becomes the reference); there is no alarm while it is being collected.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from river import drift

from bqx_online.config import DriftConfig

DETECTOR = "page_hinkley"


@dataclass(frozen=True)
class DriftSignal:
    detector: str  # 'page_hinkley'
    evidence: dict = field(default_factory=dict)


def long_run_sd(values: list[float], block: int) -> float:
    """sd of the means of non-overlapping `block`-value blocks, times √block (at least the
    values' own sd: positively autocorrelated errors never vary less in the long run)."""
    marginal = statistics.pstdev(values) if len(values) > 1 else 0.0
    blocks = [
        statistics.fmean(values[i : i + block]) for i in range(0, len(values) - block + 1, block)
    ]
    if len(blocks) < 2:
        return marginal
    return max(statistics.stdev(blocks) * math.sqrt(block), marginal)


def lag1_autocorrelation(values: list[float]) -> float:
    """Pearson correlation of consecutive values (nan for fewer than 3 or a constant series)."""
    if len(values) < 3:
        return float("nan")
    a, b = values[:-1], values[1:]
    try:
        return statistics.correlation(a, b)
    except statistics.StatisticsError:
        return float("nan")


class DriftMonitor:
    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self.baseline_: list[float] = []
        self.mean_: float | None = None
        self.unit_: float | None = None
        self.detector_: drift.PageHinkley | None = None
        self.recent_: deque[float] = deque(maxlen=self.config.recent_window)
        self.n_seen_ = 0
        self.n_alarms_ = 0

    def _start(self) -> None:
        """Set the reference (mean and long-run sd of the baseline) and a fresh detector."""
        values = self.baseline_
        self.mean_ = statistics.fmean(values)
        self.unit_ = max(long_run_sd(values, self.config.block), self.config.min_unit, 1e-12)
        self.detector_ = drift.PageHinkley(
            min_instances=1,
            delta=self.config.delta,
            threshold=self.config.threshold,
            mode="up",
        )
        self.baseline_ = []

    def update(self, skill: float) -> list[DriftSignal]:
        """Add one matured skill value (AdaptiveEnsemble.skill); return the alarms it raised."""
        self.n_seen_ += 1
        self.recent_.append(skill)
        if self.n_seen_ <= self.config.warmup:
            return []
        if self.detector_ is None:
            self.baseline_.append(skill)
            if len(self.baseline_) >= self.config.baseline_window:
                self._start()
            return []
        self.detector_.update((skill - self.mean_) / self.unit_)
        if not self.detector_.drift_detected:
            return []
        signal = DriftSignal(
            DETECTOR,
            {
                "skill_mean_before": self.mean_,
                "skill_mean_recent": statistics.fmean(self.recent_),
                "recent_window": len(self.recent_),
                "long_run_sd": self.unit_,
                "delta": self.config.delta,
                "threshold": self.config.threshold,
            },
        )
        self.detector_ = None  # collect a new baseline: the new regime becomes the reference
        self.n_alarms_ += 1
        return [signal]
