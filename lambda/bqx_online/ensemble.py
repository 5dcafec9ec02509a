"""The adaptive ensemble: river regressors and a zero member, weighted by exponentiated loss,
learning the target in units of its trailing volatility.

Members (river, single-row API on dicts):
- `arf`: forest.ARFRegressor with ADWIN drift and warning detectors (each tree is replaced by
  a background tree when its own error drifts);
- `bagged_ht` (or `srp_ht`): bagged (or Streaming Random Patches) Hoeffding-tree regressors;
- `linear`: a linear model on standardised inputs, clipped to ± `linear_input_clip` sd, its
  weights learning with a small SGD step (config.EnsembleConfig.learning_rate);
- `zero`: predicts 0, the member that says "no signal". bqx_t60 is a weighted sum of future
  returns (R² ≈ 0 on real 2017 data), and before it existed the ensemble's MAE was above
  predicting zero (issue 16): no member could say "nothing";
- `multitask`: the static multi-task net's prediction for the same minute, when there is one
  (it is weighted like the others but never learns here).

Target scale: the learning members learn y / s and predict s · f(x), s the target's trailing
volatility (TrailingScale: the RMS of the targets learned, moved by the fast variance of the
outcomes' minute-to-minute increments, so that it follows a volatility change within tens of
outcomes instead of hundreds). A volatility change alone then leaves the relation the members
learned intact, and every member's loss is measured in the same vol units whatever the pair
and the month. The drift statistics of an outcome are measured in the scale its prediction was
made in (prediction_scale). On the 24 calibration streams with a volatility change alone
(bench/online.py --calibrate) this took the alarms after the change from 3 to 0 and the
ensemble's MAE / zero's in the 600 minutes after it from 0.66 to 0.52.

Weights (evidence-gated Hedge with discounting, gated_hedge): L_i ← γ · L_i + |y - p_i| / s,
γ = 1 - 1 / loss_window; a member gets weight only while it leads the zero member,
L_i < L_zero - margin, and the zero member and the leaders share w_i ∝ exp(-η · L_i). When no
member leads, the zero member has weight 1 and the ensemble predicts exactly 0.0. The losses
are those of the predictions actually stored at the time (`member_predictions`), not of a
re-prediction after the fact, so the weighting is prequential. η and the margin are tuned on
the validation period (bench/online_real.py --tune-gate on real Oct 26-31 2017; tune_rate on
generated streams in bench/online.py), never on the test.

Why the gate: with plain Hedge the ensemble was slightly worse than zero on real 2017 data
(28 pairs, Nov 1-24: ensemble - zero +7.1e-09 [+5.0e-10, +1.6e-08], above 0 for 8 of 28
pairs). No member had skill there (member MAE ÷ zero's: ARF 1.12-1.17, bagged trees
1.04-1.29, linear 1.28-1.52), zero kept ≥ 0.99995 of the weight, and the e^-(η · lead) left on
members hundreds of vol units behind was a pure cost. A weight is evidence that a member beats
saying nothing; a member without that evidence now gets none. Where members do lead (the
generated markets of the tests, a planted signal) the gate changes nothing but the weights of
members that are behind. Validation (bench/online_real.py --tune-gate, real Oct 26 -
Oct 31 22:59 2017, 28 pairs, 138,584 pair-minutes, the members main's run stored; load 4.1-4.7
on 2 cores): plain Hedge replayed from each pair's first outcome reproduced the stored ensemble
to 8.7e-19 (245,268 rows), and scored ensemble - zero +2.3e-10 [-1.2e-10, +6.8e-10] at
η 0.1 (+2.3e-07 at 0.03, +9e-20 at 0.3, +1.4e-77 at 1). Gated, every margin of the grid (0,
0.5, 1, 2, 5, 10, 20) and every η (0.03-1) scored exactly zero's MAE (0.04051266): no member led
the zero member on any pair at any minute, so the ensemble said exactly 0 throughout. The tie
goes to the smallest margin, 0 (a member that leads is adopted soonest where there is a
signal), and η stays 0.1 (under the gate it only weights the leaders).

One definition: hedge_replay (a stored stream) calls the same gated_hedge and mixture as
AdaptiveEnsemble.weights / predict_members, and a test checks the live service's stored
predictions against it (ensemble_replay) to 1e-12.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import deque
from collections.abc import Sequence

import numpy as np
from river import compose, drift, ensemble, forest, linear_model, optim, preprocessing, tree

from bqx.metrics import mae
from bqx_online import river_copies
from bqx_online.config import EnsembleConfig

river_copies.install()  # the trees' split attempts copy stats.Var: fast and exact (see there)

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
        | compose.FuncTransformer(functools.partial(clip_inputs, limit=config.linear_input_clip))
        | linear_model.LinearRegression(optimizer=optim.SGD(config.learning_rate)),
    }


def clip_inputs(x: dict, limit: float) -> dict:
    """Standardised inputs clipped to ±limit sd (the linear member's). An SGD step moves the
    weights by rate · error · x, so one input 30 sd out (a young scaler, a heavy tail: volatility
    ratios, regression curvatures) moves them 900 × as far as a typical one. Measured on real
    2017 bars (5 pairs, prequential, bench/history.md "online_real, the linear member"): with
    the old step 0.01 the clip alone changed nothing (MAE 8.1-13.3 × zero's on Nov 1-17 either
    way: the step itself diverged), but at the smaller steps it kept a pair from diverging
    (at the default step 1e-3, MAE ÷ zero's on Nov 1-17 without → with the clip: GBPUSD 11.6 →
    1.42, AUDJPY 11.2 → 1.35, EURGBP 7.4 → 1.36; EURUSD 1.32 → 1.30, USDJPY 1.36 → 1.31)."""
    return {name: min(max(value, -limit), limit) for name, value in x.items()}


def gated_hedge(
    losses: Sequence[float], zero: int | None, rate: float, margin: float
) -> list[float]:
    """The weights of every weighting here, live and replayed (hedge_weights, hedge_replay).

    Evidence-gated Hedge: a member whose discounted loss is not below the zero member's by
    more than `margin` (L_i ≥ L_zero - margin) gets weight exactly 0; the zero member and the
    members that lead it share exp(-rate · L_i), normalised. So when no member leads, the zero
    member has weight 1 and the mixture is exactly 0.0. zero None (no zero member): plain
    Hedge over all; margin -inf: plain Hedge too (every member "leads"). Plain Python on a
    handful of floats: ~10 × faster than numpy per call, which the replays call per minute."""
    if zero is None:
        eligible = [True] * len(losses)
    else:
        bar = losses[zero] - margin
        eligible = [i == zero or loss < bar for i, loss in enumerate(losses)]
    best = min(loss for loss, ok in zip(losses, eligible, strict=True) if ok)
    scores = [
        math.exp(-rate * (loss - best)) if ok else 0.0
        for loss, ok in zip(losses, eligible, strict=True)
    ]
    total = sum(scores)
    return [score / total for score in scores]


def mixture(weights: Sequence[float], predictions: Sequence[float]) -> float:
    """Σ w_i · p_i over the members with weight (0 · a gated member's prediction is never
    added: with the zero member alone the result is exactly 0.0)."""
    return float(sum(w * p for w, p in zip(weights, predictions, strict=True) if w > 0.0))


def hedge_weights(losses: dict[str, float], rate: float, margin: float) -> dict[str, float]:
    """gated_hedge of {member: discounted loss} (the zero member is ZERO_MEMBER; equal weights
    when rate is 0 and every member leads or none was scored yet)."""
    if not losses:
        return {}
    names = list(losses)
    zero = names.index(ZERO_MEMBER) if ZERO_MEMBER in losses else None
    weights = gated_hedge([losses[n] for n in names], zero, rate, margin)
    return dict(zip(names, weights, strict=True))


def hedge_replay(
    member_predictions: np.ndarray,
    y: np.ndarray,
    scale: np.ndarray,
    rate: float,
    window: int,
    lag: int = 0,
    *,
    margin: float = -math.inf,
    zero: int | None = None,
    initial: np.ndarray | None = None,
    known: np.ndarray | None = None,
) -> np.ndarray:
    """The (gated) Hedge mixture over a stored stream (rows: learned outcomes in learning
    order, columns: members), through the live weighting's own function (gated_hedge). Row
    t's weights use the losses of rows < t - lag (lag = horizon - 1 for outcomes that mature
    `horizon` minutes later), or of the first known[t] rows when `known` is given (a stored
    run: the outcomes learned before row t's minute), as the live ensemble's do. `initial`:
    the losses before any outcome (AdaptiveEnsemble: prior_loss for the learning members, 0
    for the zero member; zeros by default). `scale` is the unit each row's loss was counted
    in (learned_scales). margin -inf or zero None: plain Hedge. See ensemble_replay for the
    shipped configuration."""
    gamma = 1.0 - 1.0 / window
    n, k = member_predictions.shape
    errors = (np.abs(y[:, None] - member_predictions) / scale[:, None]).tolist()
    rows = member_predictions.tolist()
    losses = [0.0] * k if initial is None else [float(v) for v in initial]
    if known is None:
        known = np.maximum(np.arange(n) - lag, 0)
    out = np.empty(n)
    done = 0  # rows whose loss is in `losses`
    for t, seen in enumerate(known.tolist()):
        while done < seen:
            losses = [gamma * loss + e for loss, e in zip(losses, errors[done], strict=True)]
            done += 1
        out[t] = mixture(gated_hedge(losses, zero, rate, margin), rows[t])
    return out


def ensemble_replay(
    names: Sequence[str],
    member_predictions: np.ndarray,
    y: np.ndarray,
    scale: np.ndarray,
    config: EnsembleConfig,
    lag: int = 0,
    known: np.ndarray | None = None,
) -> np.ndarray:
    """hedge_replay with `config`'s weighting (rate, loss_window, margin) and the live
    ensemble's start (the learning members prior_loss behind the zero member): what a fresh
    AdaptiveEnsemble with `config` predicts from these member predictions (`names`: the
    columns; no static member, whose prior is set when it first appears)."""
    if STATIC_MEMBER in names:
        raise ValueError("ensemble_replay: a static member's start is not replayed")
    initial = np.array([0.0 if n == ZERO_MEMBER else config.prior_loss for n in names])
    return hedge_replay(
        member_predictions,
        y,
        scale,
        config.rate,
        config.loss_window,
        lag,
        margin=config.margin,
        zero=list(names).index(ZERO_MEMBER),
        initial=initial,
        known=known,
    )


def learned_scales(y: np.ndarray, minutes: np.ndarray, config: EnsembleConfig) -> np.ndarray:
    """The unit each outcome's loss was counted in by AdaptiveEnsemble.learn_one (outcomes in
    learning order, `minutes` their prediction minutes since the epoch): the trailing scale
    before the outcome, after it for the first (which sets the unit). The scale is not
    stored with a run; this rebuilds it with the shipped TrailingScale."""
    scale = TrailingScale(config.scale_halflife, config.scale_fast_halflife)
    out = np.empty(len(y))
    for i, (value, minute) in enumerate(zip(y.tolist(), minutes.tolist(), strict=True)):
        if i == 0:
            scale.update(value, minute)
            out[i] = scale.value
        else:
            out[i] = scale.value
            scale.update(value, minute)
    return out


def tune_rate(
    names: Sequence[str],
    member_predictions: np.ndarray,
    y: np.ndarray,
    scale: np.ndarray,
    config: EnsembleConfig,
    grid: Sequence[float],
    lag: int = 0,
) -> tuple[float, dict[float, float]]:
    """The Hedge rate of `grid` with the lowest MAE on a (validation) stream, and each rate's
    MAE: `config`'s weighting with each rate, from the live start (ensemble_replay)."""
    maes = {}
    for rate in grid:
        replayed = ensemble_replay(
            names, member_predictions, y, scale, dataclasses.replace(config, rate=rate), lag
        )
        maes[rate] = float(mae(y, replayed))
    return min(maes, key=maes.get), maes


class Ewma:
    """Bias-corrected exponentially weighted mean (None before the first value)."""

    def __init__(self, halflife: float) -> None:
        self.decay = 0.5 ** (1.0 / halflife)
        self.sum_ = 0.0
        self.weight_ = 0.0

    def update(self, value: float) -> None:
        self.sum_ = self.decay * self.sum_ + value
        self.weight_ = self.decay * self.weight_ + 1.0

    @property
    def value(self) -> float | None:
        return None if self.weight_ == 0.0 else self.sum_ / self.weight_


class TrailingScale:
    """The target's trailing volatility s, from matured outcomes y in prediction-minute order.

    s² = (slow mean of y²) · (fast mean of Δ²) / (slow mean of Δ²), Δ² = (y_t - y_{t-g})² / g
    for outcomes g ≤ max_gap minutes apart. Why: consecutive outcomes of 60-minute horizons
    share 59 of 60 future returns, so a window of n outcomes holds only ~n / 60 independent
    looks at y², and an EWMA of y² alone must be slow to be steady (half-life 240 outcomes,
    the previous scale); after a volatility change it lagged for hours (s reached 2 of a
    tripling after ~160 outcomes and 2.7 after ~540), the members learned targets up to 3 ×
    too large, and the ensemble then lost skill against zero (the 3 alarms after a tripling in
    bench/online.py --calibrate). Neighbouring outcomes differ by a difference of two one-minute
    returns, so the increments' variance carries a new look at the volatility every outcome:
    their fast mean (half-life `fast_halflife`) tracks a change within tens of outcomes. The
    slow ratio mean(y²) / mean(Δ²) only converts the increments' units into the target's (for
    a sum of h independent returns it is h / 2), and a change of scale moves numerator and
    denominator alike, so it stays put. Before any increment s is the RMS of the targets.
    """

    def __init__(
        self,
        halflife: float,
        fast_halflife: float,
        max_gap: int = 10,
        floor: float = 1e-12,
        history: int = 240,
    ) -> None:
        self.level_ = Ewma(halflife)  # y²
        self.increments_ = Ewma(halflife)  # Δ², as slow as the level: their ratio
        self.fast_ = Ewma(fast_halflife)  # Δ², fast: the change
        self.max_gap = max_gap
        self.floor = floor
        self.last_: tuple[int, float] | None = None  # (minute, y) of the previous outcome
        # (minute, s after learning that minute's outcome), newest last: the scale in force
        # when a prediction was made (see at)
        self.history_: deque[tuple[int, float]] = deque(maxlen=history)

    def update(self, y: float, minute: int | None = None) -> None:
        """Add the outcome of the prediction made at `minute` (minutes since the epoch; None:
        the minute after the previous outcome's)."""
        if minute is None:
            minute = self.last_[0] + 1 if self.last_ is not None else 0
        self.level_.update(y * y)
        if self.last_ is not None and 0 < minute - self.last_[0] <= self.max_gap:
            gap = minute - self.last_[0]
            increment = (y - self.last_[1]) ** 2 / gap
            self.increments_.update(increment)
            self.fast_.update(increment)
        self.last_ = (minute, y)
        value = self.value
        if self.history_ and self.history_[-1][0] == minute:
            self.history_.pop()  # the same outcome again (the first one sets the unit)
        if value is not None:
            self.history_.append((minute, value))

    def at(self, minute: int) -> float | None:
        """The scale after the newest outcome of a prediction minute ≤ `minute` (None when the
        history does not reach back that far)."""
        for seen, value in reversed(self.history_):
            if seen <= minute:
                return value
        return None

    @property
    def value(self) -> float | None:
        level = self.level_.value
        if level is None:
            return None
        slow, fast = self.increments_.value, self.fast_.value
        if slow is not None and fast is not None and slow > 0.0:
            level *= fast / slow
        return max(math.sqrt(level), self.floor)


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
        self.scale_ = TrailingScale(self.config.scale_halflife, self.config.scale_fast_halflife)
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
        """Gated Hedge weights of `members` (gated_hedge)."""
        losses = {name: self._loss(name) for name in members}
        return hedge_weights(losses, self.config.rate, self.config.margin)

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
        names = list(predictions)
        value = mixture([weights[n] for n in names], [predictions[n] for n in names])
        return value, predictions, weights

    def predict_one(self, x: dict, static: float | None = None) -> float:
        return self.predict_members(x, static)[0]

    def prediction_scale(self, minute: int, lag: int) -> float:
        """The scale in force when the prediction of `minute` was made: after the outcomes
        of prediction minutes ≤ minute - lag (lag = the horizon: those were the known ones).
        The drift statistics of an outcome are measured in this unit, the one its prediction
        ŷ = s · f(x) was made in: the direction skill is then -sign(y) · f(x), which no
        volatility change can move, and after a change the loss skill moves only as far as the
        outcome really is larger or smaller than predicted. In the scale of the moment (learned
        up to the outcome itself) a prediction made before a cut to a third is judged in
        units already a third as large, so both statistics triple for an hour, the
        wrong-direction minutes too (2 alarms after a cut on the calibration streams).
        The current scale when the history does not reach back (a fresh learner)."""
        value = self.scale_.at(minute - lag)
        return value if value is not None else self.scale

    def skill(self, y: float, predicted: float, scale: float | None = None) -> float:
        """The ensemble's squared loss minus the zero member's, in units of the target's
        trailing variance: ((y - ŷ)² - y²) / s² = (ŷ² - 2yŷ) / s². The drift monitor's first
        statistic (drift.py). It does not grow with y² (a volatility spike alone moves it only
        through yŷ), and it is negative exactly when the ensemble beat saying nothing. On
        generated streams it separated a planted flip from stationary noise ~2 × better than
        the absolute-loss difference (|y - ŷ| - |y|) / s, whose per-minute noise comes from
        |y| itself: alarm within 10 minutes for 6 of 6 flips vs 2 of 6 at equal false alarms
        (bench/online.py)."""
        s = self.scale if scale is None else scale
        return (predicted * predicted - 2.0 * y * predicted) / (s * s)

    def direction(self, y: float, predicted: float, scale: float | None = None) -> float:
        """-sign(y) · ŷ / s: how much the absolute loss changes, to first order, when moving
        from the zero member toward ŷ (d/dλ |y - λŷ| at λ = 0), in vol units. The drift
        monitor's second statistic: it depends on the outcome only through its sign, so a
        volatility change alone cannot move it, while a flipped relation moves it as much as
        the loss skill (drift.py)."""
        if y == 0.0:
            return 0.0
        return -math.copysign(1.0, y) * predicted / (self.scale if scale is None else scale)

    def learn_one(
        self,
        x: dict,
        y: float,
        member_predictions: dict[str, float] | None = None,
        minute: int | None = None,
    ):
        """Learn the outcome y of the prediction made at `minute` (minutes since the epoch;
        None: the minute after the previous outcome's), which the trailing scale needs to know
        which outcomes are neighbours."""
        first = self.scale_.value is None
        if first:  # the first outcome sets the unit it is learned in
            self.scale_.update(y, minute)
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
        if not first:
            self.scale_.update(y, minute)
        self.n_learned_ += 1
        return self
