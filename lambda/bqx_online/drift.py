"""The drift monitor of one pair: river's ADWIN on the absolute-error stream, and the plan's
rule that the recent MAE (last 100 outcomes) above 1.5 × the baseline MAE is drift.

The baseline is the MAE of the `baseline_window` outcomes after the warm-up, and is set again
after each MAE-ratio alarm (the new regime becomes the reference), so one change raises one
such alarm rather than one a minute; ADWIN drops the old part of its window itself. ADWIN
alarms only when the error mean went up: a shrinking window after the error fell (the model
got better) is not an event.

ADWIN sees the errors divided by the recent MAE at the end of the warm-up (and again after
each MAE-ratio alarm). Its cut test has a term, 2/(3m)·ln(4n/δ), that does not scale with the
data: raw errors of size 0.01 (bqx values) would make it blind, errors of size 10 jumpy. In MAE
units it means the same for every pair and target.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from river import drift

from bqx_online.config import DriftConfig


@dataclass(frozen=True)
class DriftSignal:
    detector: str  # 'adwin' | 'mae_ratio'
    evidence: dict = field(default_factory=dict)


class DriftMonitor:
    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self.adwin_ = self._new_adwin()
        self.recent_: deque[float] = deque(maxlen=self.config.recent_window)
        self.baseline_errors_: list[float] = []
        self.baseline_mae_: float | None = None
        self.scale_ = 1.0
        self.n_seen_ = 0
        self.n_alarms_ = 0

    def _new_adwin(self) -> drift.ADWIN:
        return drift.ADWIN(
            delta=self.config.adwin_delta,
            clock=self.config.adwin_clock,
            grace_period=self.config.adwin_grace,
        )

    def _scale(self) -> float:
        """The unit ADWIN's errors are measured in: the recent MAE (1 when there is none)."""
        mae = self.recent_mae
        return mae if mae and mae > 0 else 1.0

    @property
    def recent_mae(self) -> float | None:
        return sum(self.recent_) / len(self.recent_) if self.recent_ else None

    def update(self, abs_error: float) -> list[DriftSignal]:
        """Add one absolute error; return the detectors that fired on it."""
        self.n_seen_ += 1
        self.recent_.append(abs_error)
        signals: list[DriftSignal] = []
        if self.n_seen_ <= self.config.warmup:
            if self.n_seen_ == self.config.warmup:
                self.scale_ = self._scale()
            return signals
        before = self.adwin_.estimation
        self.adwin_.update(abs_error / self.scale_)
        if self.adwin_.drift_detected and self.adwin_.estimation > before:
            signals.append(
                DriftSignal(
                    "adwin",
                    {
                        "error_mean_before": before * self.scale_,
                        "error_mean_after": self.adwin_.estimation * self.scale_,
                        "window_width": int(self.adwin_.width),
                        "delta": self.config.adwin_delta,
                    },
                )
            )
        if self.baseline_mae_ is None:
            self.baseline_errors_.append(abs_error)
            if len(self.baseline_errors_) >= self.config.baseline_window:
                self.baseline_mae_ = sum(self.baseline_errors_) / len(self.baseline_errors_)
                self.baseline_errors_ = []
        elif (
            len(self.recent_) == self.recent_.maxlen
            and self.recent_mae > self.config.mae_ratio * self.baseline_mae_
        ):
            signals.append(
                DriftSignal(
                    "mae_ratio",
                    {
                        "recent_mae": self.recent_mae,
                        "baseline_mae": self.baseline_mae_,
                        "ratio": self.recent_mae / self.baseline_mae_,
                        "threshold": self.config.mae_ratio,
                    },
                )
            )
            self.baseline_mae_ = None  # the new regime becomes the reference
            self.scale_ = self._scale()
            self.adwin_ = self._new_adwin()
            self.recent_.clear()
        self.n_alarms_ += len(signals)
        return signals
