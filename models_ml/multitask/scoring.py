"""Metrics of stage 2.18 and the simple baselines every net must beat.

Baselines, all fitted on the train period only (scikit-learn style: `fit` returns self,
learned attributes end in `_`):
- zero: bqx_t60 = 0 (bqx is a deviation from the trailing mean, so 0 is "no move");
- persistence: bqx_t60 = bqx_60 now (the input column), vol_t60 = the train mean;
- ridge: RidgeCV on the standardized inputs for bqx_t60 and vol_t60, a RidgeClassifierCV for
  the regime; the majority class of the train period is the regime's floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeClassifierCV, RidgeCV

from bqx.metrics import accuracy, directional_accuracy, mae, r2
from models_ml.multitask.data import Targets

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class ModelScores:
    """One model's scores on one pair and period; None where it has no such head."""

    bqx_mae: float
    bqx_r2: float
    bqx_directional: float
    vol_r2: float | None = None
    vol_mae: float | None = None
    regime_accuracy: float | None = None


def score(
    targets: Targets,
    bqx: np.ndarray,
    vol: np.ndarray | None = None,
    regime: np.ndarray | None = None,
) -> ModelScores:
    return ModelScores(
        bqx_mae=mae(targets.bqx, bqx),
        bqx_r2=r2(targets.bqx, bqx),
        bqx_directional=directional_accuracy(targets.bqx, bqx),
        vol_r2=None if vol is None else r2(targets.vol, vol),
        vol_mae=None if vol is None else mae(targets.vol, vol),
        regime_accuracy=None if regime is None else accuracy(targets.regime, regime),
    )


class Baselines:
    """Zero, persistence, majority class and ridge, fitted on the train period."""

    def __init__(self, persistence_column: int, n_classes: int) -> None:
        self.persistence_column = persistence_column
        self.n_classes = n_classes

    def fit(self, x_scaled: np.ndarray, targets: Targets) -> Baselines:
        self.vol_mean_ = float(np.mean(targets.vol))
        counts = np.bincount(targets.regime, minlength=self.n_classes)
        self.majority_class_ = int(np.argmax(counts))
        self.bqx_ridge_ = RidgeCV(alphas=RIDGE_ALPHAS).fit(x_scaled, targets.bqx)
        self.vol_ridge_ = RidgeCV(alphas=RIDGE_ALPHAS).fit(x_scaled, targets.vol)
        if len(np.unique(targets.regime)) > 1:
            self.regime_ridge_ = RidgeClassifierCV(alphas=RIDGE_ALPHAS).fit(
                x_scaled, targets.regime
            )
        else:
            self.regime_ridge_ = None
        return self

    def scores(
        self, x_raw: np.ndarray, x_scaled: np.ndarray, targets: Targets
    ) -> dict[str, ModelScores]:
        n = len(targets)
        majority = np.full(n, self.majority_class_)
        ridge_regime = (
            majority if self.regime_ridge_ is None else self.regime_ridge_.predict(x_scaled)
        )
        return {
            "zero": score(targets, np.zeros(n), np.full(n, self.vol_mean_), majority),
            "persistence": score(
                targets,
                x_raw[:, self.persistence_column].astype(np.float64),
                np.full(n, self.vol_mean_),
                majority,
            ),
            "ridge": score(
                targets,
                self.bqx_ridge_.predict(x_scaled),
                self.vol_ridge_.predict(x_scaled),
                ridge_regime,
            ),
        }

    def majority_rate(self, targets: Targets) -> float:
        return accuracy(targets.regime, np.full(len(targets), self.majority_class_))
