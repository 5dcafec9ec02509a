"""The adaptive ensemble: river regressors weighted by a softmax of their recent MAE.

Members (river, single-row API on dicts):
- `arf`: forest.ARFRegressor with ADWIN drift and warning detectors (each tree is replaced by
  a background tree when its own error drifts);
- `bagged_ht` (or `srp_ht`): bagged (or Streaming Random Patches) Hoeffding-tree regressors;
- `linear`: a linear model on standardised inputs;
- `multitask`: the static multi-task net's prediction for the same minute, when there is one
  (it is weighted like the others but never learns here).

Weights: w_i ∝ exp(-mae_i / τ), mae_i the member's mean absolute error over its last
`error_window` outcomes. The errors are those of the predictions actually stored at the time
(`member_predictions`), not of a re-prediction after the fact, so the weighting is prequential.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

from river import drift, ensemble, forest, linear_model, optim, preprocessing, tree

from bqx_online.config import EnsembleConfig

STATIC_MEMBER = "multitask"


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


def softmax_weights(maes: dict[str, float | None], temperature: float | None) -> dict[str, float]:
    """softmax(-mae / τ) over the members that have a MAE; equal weights when none has."""
    known = {name: mae for name, mae in maes.items() if mae is not None}
    if len(known) < len(maes) or not known:
        return {name: 1.0 / len(maes) for name in maes}
    tau = temperature if temperature is not None else statistics.median(known.values())
    if not tau or tau <= 0 or not math.isfinite(tau):
        return {name: 1.0 / len(maes) for name in maes}
    best = min(known.values())
    scores = {name: math.exp(-(mae - best) / tau) for name, mae in known.items()}
    total = sum(scores.values())
    return {name: score / total for name, score in scores.items()}


class AdaptiveEnsemble:
    """learn_one / predict_one on feature dicts, like any river regressor.

    predict_members(x, static) returns every member's prediction and the weights in force;
    learn_one(x, y, member_predictions) records each member's error on the stored predictions,
    then lets the learning members learn (x, y).
    """

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        self.config = config or EnsembleConfig()
        self.members_ = build_members(self.config)
        names = [*self.members_, STATIC_MEMBER]
        self.errors_: dict[str, deque[float]] = {
            name: deque(maxlen=self.config.error_window) for name in names
        }
        self.n_learned_ = 0
        self.y_min_: float | None = None
        self.y_max_: float | None = None

    def target_range(self) -> tuple[float, float]:
        """Where member predictions are clipped: the range of the targets learned so far,
        widened by `clip_margin` of its width (0 before any target). A young learner's
        standardised inputs can be extreme, and the linear model or a tree's leaf model then
        extrapolates by orders of magnitude (seen on real EURJPY: 1e11 within a day); the
        weights, which see errors only an hour later, cannot catch that in time."""
        if self.y_min_ is None or self.y_max_ is None:
            return 0.0, 0.0
        margin = self.config.clip_margin * (self.y_max_ - self.y_min_)
        return self.y_min_ - margin, self.y_max_ + margin

    def recent_mae(self, name: str) -> float | None:
        errors = self.errors_.get(name)
        if not errors or len(errors) < self.config.min_errors:
            return None
        return sum(errors) / len(errors)

    def weights(self, members: list[str]) -> dict[str, float]:
        return softmax_weights(
            {name: self.recent_mae(name) for name in members}, self.config.temperature
        )

    def predict_members(
        self, x: dict, static: float | None = None
    ) -> tuple[float, dict[str, float], dict[str, float]]:
        """(ensemble prediction, {member: prediction}, {member: weight})."""
        low, high = self.target_range()
        predictions = {
            name: min(max(float(model.predict_one(x) or 0.0), low), high)
            for name, model in self.members_.items()
        }
        if static is not None and math.isfinite(static):
            predictions[STATIC_MEMBER] = float(static)
        weights = self.weights(list(predictions))
        value = sum(weights[name] * predictions[name] for name in predictions)
        return value, predictions, weights

    def predict_one(self, x: dict, static: float | None = None) -> float:
        return self.predict_members(x, static)[0]

    def learn_one(self, x: dict, y: float, member_predictions: dict[str, float] | None = None):
        if member_predictions:
            for name, predicted in member_predictions.items():
                if name in self.errors_:
                    self.errors_[name].append(abs(y - predicted))
        self.y_min_ = y if self.y_min_ is None else min(self.y_min_, y)
        self.y_max_ = y if self.y_max_ is None else max(self.y_max_, y)
        for model in self.members_.values():
            model.learn_one(x, y)
        self.n_learned_ += 1
        return self
