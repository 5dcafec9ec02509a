"""Metrics of stage 2.18 and the baselines every net must beat.

Baselines, all fitted on the train period only (scikit-learn style: `fit` returns self,
learned attributes end in `_`):
- zero: bqx_t60 = 0 (bqx is a deviation from the trailing mean, so 0 is "no move"); no vol
  or regime forecast;
- train_mean: the train-period means of bqx_t60 and vol_t60, the majority class and the
  train class shares as probabilities (the prior, add-one smoothed: the log-loss to beat);
  this is what the report used to call the vol "persistence" baseline;
- persistence: bqx_t60 = bqx_60 now, vol_t60 = the realised vol now (`vol_now`: the std of
  bqx_60 over the last 60 minutes, the same quantity as the target one horizon earlier);
- har: a HAR ridge for vol_t60 (Corsi 2009 in spirit): RidgeCV on the realised vol now, the
  trailing return vols vol_30, vol_60, vol_240 and vol_630 of the feature matrix, and its
  calendar columns (FX activity follows the week's sessions): minute-of-day and day-of-week
  sin/cos and the four session flags of dbt's time_features, read from the inputs (each
  calendar feature is defined once, in dbt; this module used to re-derive hour-of-week
  harmonics from the timestamp);
- ridge: RidgeCV on the standardized inputs for bqx_t60 and vol_t60, a RidgeClassifierCV for
  the regime; the majority class of the train period is the regime's floor.
Where vol_now is unknown (no row one horizon earlier; feature rows need 690 minutes of their
segment, so in practice never) it falls back to the train mean of vol_t60.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bqx.errors import BqxUserError
from bqx.metrics import (
    accuracy,
    balanced_accuracy,
    directional_accuracy,
    log_loss,
    macro_f1,
    mae,
    r2,
    recall,
)
from models_ml.multitask.data import PairRows, Targets

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
HAR_FEATURES = ("vol_30", "vol_60", "vol_240", "vol_630")
HAR_CALENDAR = (  # dbt's time_features (models/features/time_features.sql)
    "minute_of_day_sin",
    "minute_of_day_cos",
    "day_of_week_sin",
    "day_of_week_cos",
    "is_tokyo_session",
    "is_london_session",
    "is_new_york_session",
    "is_london_new_york_overlap",
)
BASELINES = ("ridge", "har", "persistence", "train_mean", "zero")


@dataclass
class ModelScores:
    """One model's scores on one pair and period; None where it has no such head."""

    bqx_mae: float | None = None
    bqx_r2: float | None = None
    bqx_directional: float | None = None
    vol_r2: float | None = None
    vol_mae: float | None = None
    regime_accuracy: float | None = None
    regime_balanced_accuracy: float | None = None
    regime_macro_f1: float | None = None
    regime_log_loss: float | None = None  # only for models that give probabilities
    high_vol_recall: float | None = None


def score(
    targets: Targets,
    bqx: np.ndarray | None = None,
    vol: np.ndarray | None = None,
    regime: np.ndarray | None = None,
    regime_proba: np.ndarray | None = None,
    high_vol_code: int | None = None,
) -> ModelScores:
    has_regime = regime is not None
    return ModelScores(
        bqx_mae=None if bqx is None else mae(targets.bqx, bqx),
        bqx_r2=None if bqx is None else r2(targets.bqx, bqx),
        bqx_directional=None if bqx is None else directional_accuracy(targets.bqx, bqx),
        vol_r2=None if vol is None else r2(targets.vol, vol),
        vol_mae=None if vol is None else mae(targets.vol, vol),
        regime_accuracy=accuracy(targets.regime, regime) if has_regime else None,
        regime_balanced_accuracy=balanced_accuracy(targets.regime, regime) if has_regime else None,
        regime_macro_f1=macro_f1(targets.regime, regime) if has_regime else None,
        regime_log_loss=None if regime_proba is None else log_loss(targets.regime, regime_proba),
        high_vol_recall=(
            recall(targets.regime, regime, high_vol_code)
            if has_regime and high_vol_code is not None
            else None
        ),
    )


def har_columns(names: list[str]) -> tuple[int, ...]:
    """Indices of the HAR design's trailing vols and calendar columns among the inputs."""
    missing = [c for c in (*HAR_FEATURES, *HAR_CALENDAR) if c not in names]
    if missing:
        raise BqxUserError(f"the feature matrix has no {', '.join(missing)} column: rebuild it")
    return tuple(names.index(name) for name in (*HAR_FEATURES, *HAR_CALENDAR))


class HarRidge:
    """RidgeCV of vol_t60 on the realised vol now, trailing vols and the calendar columns."""

    def __init__(self, columns: tuple[int, ...], alphas: tuple[float, ...] = RIDGE_ALPHAS):
        self.columns = columns
        self.alphas = alphas

    def design(self, x_raw: np.ndarray, vol_now: np.ndarray) -> np.ndarray:
        inputs = np.nan_to_num(x_raw[:, list(self.columns)].astype(np.float64))
        return np.column_stack([vol_now, inputs])

    def fit(self, x_raw: np.ndarray, vol_now: np.ndarray, vol: np.ndarray) -> HarRidge:
        self.model_ = make_pipeline(StandardScaler(), RidgeCV(alphas=self.alphas)).fit(
            self.design(x_raw, vol_now), vol
        )
        return self

    def predict(self, x_raw: np.ndarray, vol_now: np.ndarray) -> np.ndarray:
        return self.model_.predict(self.design(x_raw, vol_now))


class Baselines:
    """Zero, train mean, persistence, HAR and ridge, fitted on the train period."""

    def __init__(
        self,
        persistence_column: int,
        har_columns: tuple[int, ...],
        n_classes: int,
        high_vol_code: int | None = None,
    ) -> None:
        self.persistence_column = persistence_column
        self.har_columns = har_columns
        self.n_classes = n_classes
        self.high_vol_code = high_vol_code

    def _vol_now(self, rows: PairRows) -> np.ndarray:
        vol_now = np.full(len(rows), np.nan) if rows.vol_now is None else rows.vol_now
        return np.where(np.isfinite(vol_now), vol_now, self.vol_mean_)

    def fit(self, x_scaled: np.ndarray, rows: PairRows) -> Baselines:
        targets = rows.targets
        self.bqx_mean_ = float(np.mean(targets.bqx))
        self.vol_mean_ = float(np.mean(targets.vol))
        counts = np.bincount(targets.regime, minlength=self.n_classes)
        self.majority_class_ = int(np.argmax(counts))
        self.prior_ = (counts + 1.0) / (counts.sum() + self.n_classes)  # add-one smoothed
        self.har_ = HarRidge(self.har_columns).fit(rows.x, self._vol_now(rows), targets.vol)
        self.bqx_ridge_ = RidgeCV(alphas=RIDGE_ALPHAS).fit(x_scaled, targets.bqx)
        self.vol_ridge_ = RidgeCV(alphas=RIDGE_ALPHAS).fit(x_scaled, targets.vol)
        if len(np.unique(targets.regime)) > 1:
            self.regime_ridge_ = RidgeClassifierCV(alphas=RIDGE_ALPHAS).fit(
                x_scaled, targets.regime
            )
        else:
            self.regime_ridge_ = None
        return self

    def scores(self, x_scaled: np.ndarray, rows: PairRows) -> dict[str, ModelScores]:
        targets, n = rows.targets, len(rows)
        majority = np.full(n, self.majority_class_)
        ridge_regime = (
            majority if self.regime_ridge_ is None else self.regime_ridge_.predict(x_scaled)
        )
        code = self.high_vol_code
        vol_now = self._vol_now(rows)
        return {
            "ridge": score(
                targets,
                self.bqx_ridge_.predict(x_scaled),
                self.vol_ridge_.predict(x_scaled),
                ridge_regime,
                high_vol_code=code,
            ),
            "har": score(targets, vol=self.har_.predict(rows.x, vol_now)),
            "persistence": score(
                targets, rows.x[:, self.persistence_column].astype(np.float64), vol_now
            ),
            "train_mean": score(
                targets,
                np.full(n, self.bqx_mean_),
                np.full(n, self.vol_mean_),
                majority,
                np.tile(self.prior_, (n, 1)),
                code,
            ),
            "zero": score(targets, np.zeros(n)),
        }

    def majority_rate(self, targets: Targets) -> float:
        return accuracy(targets.regime, np.full(len(targets), self.majority_class_))
