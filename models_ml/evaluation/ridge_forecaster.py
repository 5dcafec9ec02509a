"""Ridge regression with its own standardization, fitted on training rows only.

scikit-learn's conventions: __init__ stores parameters, fit returns self, learned attributes end
in `_`. The penalty is chosen from `alphas` on the last `validation_share` of the training
rows (in time order), then the model is refitted on all of them. Missing feature values (NaN)
become the training mean (0 after scaling).
"""

from __future__ import annotations

import numpy as np


class RidgeForecaster:
    def __init__(
        self,
        alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5),
        validation_share: float = 0.2,
    ) -> None:
        self.alphas = alphas
        self.validation_share = validation_share

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeForecaster:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean_ = np.nanmean(x, axis=0)
        self.mean_[~np.isfinite(self.mean_)] = 0.0
        scale = np.nanstd(x, axis=0)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        z = self._scaled(x)
        cut = int(len(y) * (1 - self.validation_share))
        if len(self.alphas) > 1 and 10 <= cut < len(y) - 10:
            path = _RidgePath(z[:cut], y[:cut])
            errors = []
            for alpha in self.alphas:
                coef, intercept = path.solve(alpha)
                errors.append(float(np.mean((z[cut:] @ coef + intercept - y[cut:]) ** 2)))
            self.alpha_ = float(self.alphas[int(np.argmin(errors))])
        else:
            self.alpha_ = float(self.alphas[0])
        self.coef_, self.intercept_ = _RidgePath(z, y).solve(self.alpha_)
        return self

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
        return np.where(np.isfinite(z), z, 0.0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._scaled(x) @ self.coef_ + self.intercept_


class _RidgePath:
    """Ridge solutions for any penalty from one eigendecomposition of the centred Gram matrix
    (the intercept is not penalized)."""

    def __init__(self, z: np.ndarray, y: np.ndarray) -> None:
        self.z_mean, self.y_mean = z.mean(axis=0), float(y.mean())
        zc = z - self.z_mean
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(zc.T @ zc)
        self.projected = self.eigenvectors.T @ (zc.T @ (y - self.y_mean))

    def solve(self, alpha: float) -> tuple[np.ndarray, float]:
        coef = self.eigenvectors @ (self.projected / (np.maximum(self.eigenvalues, 0) + alpha))
        return coef, self.y_mean - float(self.z_mean @ coef)
