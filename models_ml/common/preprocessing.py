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
