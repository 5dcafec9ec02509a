"""The drift monitor of one pair: two one-sided CUSUMs on the ensemble's skill against the zero
member, and an alarm only when both are over their thresholds at the same minute.

What it watches, per matured outcome y of a stored prediction ŷ, s the target's trailing
volatility (AdaptiveEnsemble.skill and .direction):
- loss skill q = ((y - ŷ)² - y²) / s², the squared loss minus the zero member's: up when the
  model loses its edge over saying nothing;
- direction skill g = -sign(y) · ŷ / s, the first-order change of the absolute loss when moving
  from the zero member toward ŷ: up when the model's direction stops agreeing with the outcome's.
  It does not depend on the outcome's size at all.
Both are measured in the target scale s the prediction was made in (the scale known an hour
before the outcome matured, AdaptiveEnsemble.prediction_scale), so g = -sign(y) · f(x) does not
move at all with a volatility change, and q only as far as the outcome really is larger or
smaller than ŷ.
Why both (measured on the calibration streams below, same settings, before the scale followed
the outcome's increments): q alone alarmed within 10 minutes of 27 of 30 planted flips but also
9 times after a volatility change alone, 6 of them 3-100 minutes after the outcome's scale fell
to a third (ŷ = s · f(x) too large while s lagged); g alone is noisy (75 alarms in 15.7
stationary pair-weeks). Requiring both kept 27 of 30 flips within 10 minutes and left 3 alarms
after a volatility change (9, 344 and 557 minutes after a tripling, when the ensemble itself
lost skill while s caught up: half-life 240 outcomes). With the faster scale
(ensemble.TrailingScale) and the prediction's own unit: 0 alarms after the 24 volatility
changes, 26 of 30 flips within 10 minutes (median 2.5, max 32, none missed), 0 before them
(bench/online.py --calibrate, load 3 on 2 cores).

Why this CUSUM: outcomes of overlapping 60-minute horizons share 59 of 60 future returns, so
consecutive outcomes are nearly the same number (lag-1 autocorrelation 59/60), and so are
consecutive skill values (lag-1 0.81 per minute on the calibration weeks, 0.01 between 60-minute
block means; the long-run sd √60 · sd(block means) was 1.6-4.1 × the marginal sd).
An independence-assuming test (the old ADWIN on raw errors) counts each excursion as ~60
observations. Here each statistic is standardised by its own mean and marginal sd on a baseline
of `baseline_window` values, and the CUSUM S ← max(0, S + z - k) alarms at S > h, which for
nearly identical consecutive values means "the mean of the last n values is above
μ + (k + h / n) · sd": a short excursion counts as one value, not n, and over longer windows
the allowance k (≥ 1 sd per minute) outgrows the long-run sd of the sum (the mean of 60 values
has sd ≈ σ_LR / √60 ≈ 0.4 sd), so slow wandering cannot accumulate. k and h were chosen on
generated calibration streams (bench/online.py `--calibrate`: seeds 1000-1029 flips, 1000-1011
volatility changes, 1100-1109 stationary weeks; the tests use other seeds).

min_unit floors both units: an ensemble that gives the zero member all the weight has skill
values ~1e-12, and a change of that size is no drift. The baseline is set after the warm-up
and again after each alarm (the new regime becomes the reference); no alarm while collecting.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from bqx_online.config import DriftConfig

DETECTOR = "skill_cusum"


@dataclass(frozen=True)
class DriftSignal:
    detector: str  # 'skill_cusum'
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


@dataclass
class Cusum:
    """One-sided (upward) CUSUM of (x - mean) / unit with allowance k and threshold h."""

    mean: float
    unit: float
    allowance: float
    threshold: float
    level: float = 0.0

    @classmethod
    def from_baseline(cls, values: list[float], allowance: float, threshold: float, floor: float):
        unit = max(statistics.pstdev(values), floor, 1e-12)
        return cls(statistics.fmean(values), unit, allowance, threshold)

    def update(self, value: float) -> bool:
        self.level = max(0.0, self.level + (value - self.mean) / self.unit - self.allowance)
        return self.level > self.threshold


class DriftMonitor:
    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self.baseline_: list[tuple[float, float]] = []
        self.loss_: Cusum | None = None
        self.direction_: Cusum | None = None
        self.long_run_sd_: float | None = None
        self.recent_: deque[float] = deque(maxlen=self.config.recent_window)
        self.n_seen_ = 0
        self.n_alarms_ = 0

    def _start(self) -> None:
        """Set the references (mean and sd of each statistic on the baseline)."""
        c = self.config
        loss = [q for q, _ in self.baseline_]
        direction = [g for _, g in self.baseline_]
        self.loss_ = Cusum.from_baseline(loss, c.loss_allowance, c.loss_threshold, c.min_unit)
        self.direction_ = Cusum.from_baseline(
            direction, c.direction_allowance, c.direction_threshold, c.min_unit
        )
        self.long_run_sd_ = long_run_sd(loss, c.block)
        self.baseline_ = []

    def update(self, skill: float, direction: float) -> list[DriftSignal]:
        """Add one matured outcome's loss skill and direction skill (AdaptiveEnsemble.skill,
        .direction); return the alarms it raised."""
        self.n_seen_ += 1
        self.recent_.append(skill)
        if self.n_seen_ <= self.config.warmup:
            return []
        if self.loss_ is None or self.direction_ is None:
            self.baseline_.append((skill, direction))
            if len(self.baseline_) >= self.config.baseline_window:
                self._start()
            return []
        loss_up = self.loss_.update(skill)
        direction_up = self.direction_.update(direction)
        if not (loss_up and direction_up):
            return []
        signal = DriftSignal(
            DETECTOR,
            {
                "skill_mean_before": self.loss_.mean,
                "skill_mean_recent": statistics.fmean(self.recent_),
                "recent_window": len(self.recent_),
                "skill_sd": self.loss_.unit,
                "skill_long_run_sd": self.long_run_sd_,
                "skill_cusum": self.loss_.level,
                "direction_mean_before": self.direction_.mean,
                "direction_sd": self.direction_.unit,
                "direction_cusum": self.direction_.level,
            },
        )
        self.loss_ = self.direction_ = None  # a new baseline: the new regime is the reference
        self.n_alarms_ += 1
        return [signal]
