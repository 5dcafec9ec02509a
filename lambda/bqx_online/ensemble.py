"""The adaptive ensemble: river regressors and a zero member, weighted by exponentiated loss,
learning the target in units of its trailing volatility.

Members (river, single-row API on dicts):
- `arf`: forest.ARFRegressor with ADWIN drift and warning detectors (each tree is replaced by
  a background tree when its own error drifts);
- `bagged_ht` (or `srp_ht`): bagged (or Streaming Random Patches) Hoeffding-tree regressors;
- `linear`: a linear model on standardised inputs;
- `zero`: predicts 0, the member that says "no signal". bqx_t60 is a weighted sum of future
  returns (R² ≈ 0 on real 2017 data), and before it existed the ensemble's MAE was above
  predicting zero (issue 16): no member could say "nothing";
- `multitask`: the static multi-task net's prediction for the same minute, when there is one
  (it is weighted like the others but never learns here).

Target scale: the learning members learn y / s and predict s · f(x), s the trailing RMS of the
targets learned so far (bias-corrected EWMA of y², half-life `scale_halflife` outcomes). A
volatility change alone then leaves the relation the members learned intact, and every
member's loss is measured in the same vol units whatever the pair and the month.

Weights (Hedge with discounting): w_i ∝ exp(-η · L_i), L_i ← γ · L_i + |y - p_i| / s, with
γ = 1 - 1 / loss_window. The losses are those of the predictions actually stored at the time
(`member_predictions`), not of a re-prediction after the fact, so the weighting is
prequential, and since |·| is convex the mixture's loss is at most the weighted members' loss:
the ensemble cannot do much worse than its best member, the zero member included. η is tuned
on the validation period with `tune_rate` (bench/online.py), never on the test.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
from river import drift, ensemble, forest, linear_model, optim, preprocessing, tree

from bqx.metrics import mae
from bqx_online.config import EnsembleConfig

STATIC_MEMBER = "multitask"
ZERO_MEMBER = "zero"


def build_members(config: EnsembleConfig) -> dict:
    """The learning members, each behind its own scaler (river pipelines)."""
    if config.use_srp:
        trees_name = "srp_ht"
        trees = ensemble.SRPRegressor(
            model=tree.HoeffdingTreeRegressor(grace_period=100),
            n_models=config.bagged_models,
            seed=config.seed,
        )
    else:
        trees_name = "bagged_ht"
        trees = ensemble.BaggingRegressor(
            model=tree.HoeffdingTreeRegressor(grace_period=100),
            n_models=config.bagged_models,
            seed=config.seed,
        )
    return {
        "arf": preprocessing.StandardScaler()
        | forest.ARFRegressor(
            n_models=config.arf_models,
            drift_detector=drift.ADWIN(delta=0.001),
            warning_detector=drift.ADWIN(delta=0.01),
            seed=config.seed,
        ),
        trees_name: preprocessing.StandardScaler() | trees,
        "linear": preprocessing.StandardScaler()
        | linear_model.LinearRegression(optimizer=optim.SGD(config.learning_rate)),
    }


def hedge_weights(losses: dict[str, float], rate: float) -> dict[str, float]:
    """exp(-rate · L_i), normalised (equal weights when rate is 0 or nothing was lost yet)."""
    if not losses:
        return {}
    best = min(losses.values())
    scores = {name: math.exp(-rate * (loss - best)) for name, loss in losses.items()}
    total = sum(scores.values())
    return {name: score / total for name, score in scores.items()}


def hedge_replay(
    member_predictions: np.ndarray,
    y: np.ndarray,
    scale: np.ndarray,
    rate: float,
    window: int,
    lag: int = 0,
) -> np.ndarray:
    """The Hedge mixture over a stored stream (rows: minutes in order, columns: members). Row
    t's weights use the losses of rows < t - lag (lag = horizon - 1 for outcomes that mature
    `horizon` minutes later), as the live ensemble's do."""
    gamma = 1.0 - 1.0 / window
    n, k = member_predictions.shape
    errors = np.abs(y[:, None] - member_predictions) / scale[:, None]
    losses = np.zeros(k)
    out = np.empty(n)
    for t in range(n):
        learned = t - lag - 1  # the newest row whose loss is known at row t
        if learned >= 0:
            losses = gamma * losses + errors[learned]
        w = np.exp(-rate * (losses - losses.min()))
        out[t] = float(w @ member_predictions[t] / w.sum())
    return out


def tune_rate(
    member_predictions: np.ndarray,
    y: np.ndarray,
    scale: np.ndarray,
    grid: Sequence[float],
    window: int,
    lag: int = 0,
) -> tuple[float, dict[float, float]]:
    """The Hedge rate of `grid` with the lowest MAE on a (validation) stream, and each rate's
    MAE (see hedge_replay)."""
    maes = {}
    for rate in grid:
        mixture = hedge_replay(member_predictions, y, scale, rate, window, lag)
        maes[rate] = float(mae(y, mixture))
    return min(maes, key=maes.get), maes


class TrailingScale:
    """sqrt of the bias-corrected EWMA of y² over the targets seen (None before the first)."""

    def __init__(self, halflife: float, floor: float = 1e-12) -> None:
        self.decay = 0.5 ** (1.0 / halflife)
        self.floor = floor
        self.sum_ = 0.0
        self.weight_ = 0.0

    def update(self, y: float) -> None:
        self.sum_ = self.decay * self.sum_ + y * y
        self.weight_ = self.decay * self.weight_ + 1.0

    @property
    def value(self) -> float | None:
        if self.weight_ == 0.0:
            return None
        return max(math.sqrt(self.sum_ / self.weight_), self.floor)


class AdaptiveEnsemble:
    """learn_one / predict_one on feature dicts, like any river regressor.

    predict_members(x, static) returns every member's prediction (in target units) and the
    weights in force; learn_one(x, y, member_predictions) records each member's loss on the
    stored predictions, then lets the learning members learn (x, y / s).
    """

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        self.config = config or EnsembleConfig()
        self.members_ = build_members(self.config)
        names = [*self.members_, ZERO_MEMBER, STATIC_MEMBER]
        self.errors_: dict[str, deque[float]] = {
            name: deque(maxlen=self.config.error_window) for name in names
        }
        # discounted vol-unit losses (Hedge); the learning members start `prior_loss` behind
        # the zero member: they must earn their weight, so a young ensemble says "nothing"
        self.losses_: dict[str, float] = {ZERO_MEMBER: 0.0} | {
            name: self.config.prior_loss for name in self.members_
        }
        self.scale_ = TrailingScale(self.config.scale_halflife)
        self.n_learned_ = 0
        self.y_min_: float | None = None  # range of the scaled targets learned
        self.y_max_: float | None = None

    @property
    def scale(self) -> float:
        """The target's trailing volatility (1 before any target)."""
        value = self.scale_.value
        return value if value is not None else 1.0

    def target_range(self) -> tuple[float, float]:
        """Where member predictions (in vol units) are clipped: the range of the scaled targets
        learned so far, widened by `clip_margin` of its width (0 before any target). A young
        learner's standardised inputs can be extreme, and the linear model or a tree's leaf
        model then extrapolates by orders of magnitude (seen on real EURJPY: 1e11 within a
        day); the weights, which see errors only an hour later, cannot catch that in time."""
        if self.y_min_ is None or self.y_max_ is None:
            return 0.0, 0.0
        margin = self.config.clip_margin * (self.y_max_ - self.y_min_)
        return self.y_min_ - margin, self.y_max_ + margin

    def recent_mae(self, name: str) -> float | None:
        errors = self.errors_.get(name)
        if not errors or len(errors) < self.config.min_errors:
            return None
        return sum(errors) / len(errors)

    def _loss(self, name: str) -> float:
        """A member's discounted loss; one never scored (the static member) starts
        `prior_loss` behind the best, as the learning members did."""
        if name in self.losses_:
            return self.losses_[name]
        return min(self.losses_.values()) + self.config.prior_loss

    def weights(self, members: list[str]) -> dict[str, float]:
        """Hedge weights of `members`."""
        return hedge_weights({name: self._loss(name) for name in members}, self.config.rate)

    def predict_members(
        self, x: dict, static: float | None = None
    ) -> tuple[float, dict[str, float], dict[str, float]]:
        """(ensemble prediction, {member: prediction}, {member: weight})."""
        low, high = self.target_range()
        s = self.scale
        predictions = {
            name: s * min(max(float(model.predict_one(x) or 0.0), low), high)
            for name, model in self.members_.items()
        }
        predictions[ZERO_MEMBER] = 0.0
        if static is not None and math.isfinite(static):
            predictions[STATIC_MEMBER] = float(static)
        weights = self.weights(list(predictions))
        value = sum(weights[name] * predictions[name] for name in predictions)
        return value, predictions, weights

    def predict_one(self, x: dict, static: float | None = None) -> float:
        return self.predict_members(x, static)[0]

    def skill(self, y: float, predicted: float) -> float:
        """The ensemble's squared loss minus the zero member's, in units of the target's
        trailing variance: ((y - ŷ)² - y²) / s² = (ŷ² - 2yŷ) / s². The drift monitor's first
        statistic (drift.py). It does not grow with y² (a volatility spike alone moves it only
        through yŷ), and it is negative exactly when the ensemble beat saying nothing. On
        generated streams it separated a planted flip from stationary noise ~2 × better than
        the absolute-loss difference (|y - ŷ| - |y|) / s, whose per-minute noise comes from
        |y| itself: alarm within 10 minutes for 6 of 6 flips vs 2 of 6 at equal false alarms
        (bench/online.py)."""
        s = self.scale
        return (predicted * predicted - 2.0 * y * predicted) / (s * s)

    def direction(self, y: float, predicted: float) -> float:
        """-sign(y) · ŷ / s: how much the absolute loss changes, to first order, when moving
        from the zero member toward ŷ (d/dλ |y - λŷ| at λ = 0), in vol units. The drift
        monitor's second statistic: it depends on the outcome only through its sign, so a
        volatility change alone cannot move it, while a flipped relation moves it as much as
        the loss skill (drift.py)."""
        if y == 0.0:
            return 0.0
        return -math.copysign(1.0, y) * predicted / self.scale

    def learn_one(self, x: dict, y: float, member_predictions: dict[str, float] | None = None):
        if self.scale_.value is None:
            self.scale_.update(y)
        s = self.scale
        if member_predictions:
            gamma = 1.0 - 1.0 / self.config.loss_window
            for name, predicted in member_predictions.items():
                if name in self.errors_:
                    error = abs(y - predicted)
                    self.errors_[name].append(error)
                    self.losses_[name] = gamma * self._loss(name) + error / s
        scaled = y / s
        self.y_min_ = scaled if self.y_min_ is None else min(self.y_min_, scaled)
        self.y_max_ = scaled if self.y_max_ is None else max(self.y_max_, scaled)
        for model in self.members_.values():
            model.learn_one(x, scaled)
        self.scale_.update(y)
        self.n_learned_ += 1
        return self
