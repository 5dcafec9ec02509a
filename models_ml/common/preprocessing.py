"""Train-period scaling shared by the autoencoder, the multi-task nets and their predictions:
fitted on train rows only, applied unchanged to validation, test and live rows."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def fit_scaler(features: np.ndarray) -> StandardScaler:
    """A StandardScaler fitted in float64; constant features get scale 1 (never NaN or inf).

    scikit-learn already maps a zero variance to scale 1; a variance of ~1e-30 from float
    noise would instead blow a feature up to ~1e15, so tiny scales are set to 1 as well.
    """
    scaler = StandardScaler().fit(features.astype(np.float64))
    tiny = ~np.isfinite(scaler.scale_) | (scaler.scale_ < 1e-12)
    scaler.scale_[tiny] = 1.0
    return scaler


def standardize(scaler: StandardScaler, features: np.ndarray) -> np.ndarray:
    """Scaled float32 features; a missing value (NULL → NaN) becomes 0, the train mean."""
    scaled = scaler.transform(features.astype(np.float64)).astype(np.float32)
    return np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)


class RobustScaler:
    """Train-period robust scaling: each feature clipped to its train [q, 1 - q] quantiles,
    then standardized with the clipped train mean and sd; 0/1 flags (features whose finite
    train values are all 0 or 1) are only centred, never divided by their sd.

    Why (issue 16): the feature matrix carries ratio sentinels of 10 and rare 0/1 flags that a
    plain StandardScaler turns into z ≈ 10 or more, and a squared-error reconstruction then
    spends its capacity on those few values. `mean_`, `scale_` and `n_features_in_` mirror
    scikit-learn's StandardScaler so standardize() and the checks that read them keep working.
    """

    def __init__(self, quantile: float = 0.005) -> None:
        self.quantile = quantile

    def fit(self, features: np.ndarray) -> RobustScaler:
        x = features.astype(np.float64)
        self.n_features_in_ = x.shape[1]
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(x), x, np.nan)
            self.flag_ = np.all(np.isnan(finite) | (finite == 0) | (finite == 1), axis=0)
            low = np.nan_to_num(np.nanquantile(finite, self.quantile, axis=0))
            high = np.nan_to_num(np.nanquantile(finite, 1 - self.quantile, axis=0))
            self.low_ = np.where(self.flag_, 0.0, low)  # a rare flag's 99.5% quantile is 0
            self.high_ = np.where(self.flag_, 1.0, high)
            clipped = np.clip(finite, self.low_, self.high_)
            self.mean_ = np.nan_to_num(np.nanmean(clipped, axis=0))
            scale = np.nanstd(clipped, axis=0)
        self.scale_ = np.where(~np.isfinite(scale) | (scale < 1e-12) | self.flag_, 1.0, scale)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        x = np.clip(features.astype(np.float64), self.low_, self.high_)
        return (x - self.mean_) / self.scale_


def fit_robust_scaler(features: np.ndarray, quantile: float = 0.005) -> RobustScaler:
    """A RobustScaler fitted on (train-period) rows."""
    return RobustScaler(quantile).fit(features)
