"""The online learner's configuration: built once at the edge (CLI, handler), passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

# A compact default input: the per-minute cost of river's trees grows with the feature count
# (ARFRegressor(10) + bagged Hoeffding trees: ~9 ms per learn+predict at 40 features, ~70 ms at
# 230), and the plan's budget is one step for 28 pairs within 5 s. Names missing from the
# database are skipped; `features=()` means every column of the two feature views.
DEFAULT_FEATURES: tuple[str, ...] = (
    "bqx_15",
    "bqx_30",
    "bqx_45",
    "bqx_60",
    "bqx_90",
    "bqx_150",
    "bqx_240",
    "bqx_390",
    "bqx_630",
    "vol_30",
    "vol_60",
    "vol_240",
    "vol_630",
    "reg_bqx_w60_linear_term",
    "reg_bqx_w60_quadratic_term",
    "reg_bqx_w60_residual",
    "reg_bqx_w240_linear_term",
    "reg_rate_w60_linear_term",
    "reg_rate_w240_linear_term",
    "reg_rate_w630_linear_term",
    "minute_of_day_sin",
    "minute_of_day_cos",
    # stage 2.16, cross-pair
    "sister_1_momentum_product_w60_linear",
    "sister_2_momentum_product_w60_linear",
    "sister_1_corr_60",
    "sister_2_corr_60",
    "sister_1_vol_ratio_60",
    "sister_2_vol_ratio_60",
    "leader_1_bqx_60_lagged",
    "leader_2_bqx_60_lagged",
)


@dataclass(frozen=True)
class EnsembleConfig:
    """Members and weighting of the adaptive ensemble (see ensemble.py).

    rate: Hedge's η, weights ∝ exp(-η · discounted vol-unit loss) over the zero member and the
    members that lead it by more than `margin`; both tuned on a validation period.
    loss_window: the discount's memory, γ = 1 - 1/loss_window.
    scale_halflife / scale_fast_halflife: outcomes over which the trailing scale's slow means
    (of y² and of the outcome's increments²) and its fast mean of increments² halve their
    memory (ensemble.TrailingScale).
    """

    arf_models: int = 10
    bagged_models: int = 3
    use_srp: bool = False  # SRP Hoeffding trees instead of bagged ones
    # the linear member's SGD step on its weights (its intercept keeps river's 0.01). River's
    # 0.01 diverged on real data (consecutive outcomes share 59 of 60 future returns, so a step
    # per minute is ~60 steps per independent outcome): MAE 8.1-13.3 × zero's on Nov 1-17 2017
    # (5 pairs; 6-29 × on 28). With 1e-3 and clipped inputs: 1.30-1.42 ×. Smaller steps score
    # ever closer to zero from above (weights and intercept at 1e-4: 1.04-1.08 ×; 1e-5: 1.00-1.01
    # ×; none below 1 on the validation days), but such a near-zero member gains Hedge weight
    # by chance on noise: at 1e-4, 7 drift alarms in 4.7 held-out stationary pair-weeks (0 at
    # 1e-3), and with the intercept at 1e-3 too the ensemble's MAE on the pure-noise test
    # streams rose 0.13% and 0.52% above zero's. Where there is a signal 1e-3 learns best
    # (generated streams, linear MAE ÷ zero's 0.33 vs 0.38 at 1e-2 and 0.69 at 1e-4).
    # bench/history.md "online_real, the linear member".
    learning_rate: float = 1e-3
    linear_input_clip: float = 3.0  # the linear member's standardised inputs, clipped to ± sd
    error_window: int = 100  # the recent MAE stored with the weights (a record)
    min_errors: int = 10
    rate: float = 0.1
    # the gate (ensemble.gated_hedge): a member whose discounted loss is not below the zero
    # member's by more than `margin` (vol units) gets weight exactly 0. Tuned on the validation
    # period (bench/online_real.py --tune-gate, real Oct 26-31 2017, 28 pairs): every margin of
    # 0-20 scored exactly zero's MAE (no member ever led), so the tie went to the smallest, 0
    margin: float = 0.0
    loss_window: int = 5000  # errors of overlapping horizons: ~80 independent hours
    scale_halflife: float = 1440.0
    scale_fast_halflife: float = 30.0
    prior_loss: float = 100.0  # the learning members' start behind the zero member (vol units)
    clip_margin: float = 0.1  # member predictions stay within the learned targets' range ± 10%
    seed: int = 7


@dataclass(frozen=True)
class DriftConfig:
    """Two CUSUMs on the ensemble's skill against the zero member (see drift.py): allowances
    and thresholds in units of each statistic's baseline sd, chosen on calibration streams."""

    loss_allowance: float = 1.5  # k of the loss skill ((y - ŷ)² - y²) / s², per minute
    loss_threshold: float = 1.0  # h of the loss skill
    direction_allowance: float = 1.0  # k of the direction skill -sign(y) · ŷ / s
    direction_threshold: float = 2.0  # h of the direction skill
    block: int = 60  # minutes per block of the long-run sd reported with an alarm (the horizon)
    baseline_window: int = 720  # skill values after warm-up (or an alarm) that set the reference
    warmup: int = 1440  # learned samples before any baseline (the members are still converging)
    recent_window: int = 10  # skill values averaged into an alarm's evidence
    min_unit: float = 0.05  # floor of both sds: an ensemble that says "nothing" cannot drift


@dataclass(frozen=True)
class OnlineConfig:
    pairs: tuple[str, ...]
    horizon_minutes: int = 60
    features: tuple[str, ...] = DEFAULT_FEATURES
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    checkpoint_every: int = 1  # minutes between checkpoints (the handler: every minute)
    keep_checkpoints: int = 3  # versions kept per pair; older files are deleted
    realized_grace_minutes: int = 15  # an outcome still missing this long after is a gap
    lookback_minutes: int = 24 * 60  # how far back a fresh learner looks for predictions
    use_static: bool = True  # the multitask net's prediction as a member when it exists

    # How far before a minute its step looks back: two spans, one for each of a backlog
    # chunk's reads from memory (replay.step_minutes); what falls outside a span is read from
    # the database as always, so a span decides cost, not results. They differ because the
    # two reads are asked for differently. The ask for stored predictions comes at every step
    # of every learner, back to its watermark or, for a fresh learner (no checkpoint), a day:
    # the mirror covers the day (one query a pair, predictions only), or each step of a fresh
    # learner would go to the database. Features and outcomes are read only for predictions
    # found and learned, the horizon and the grace back when learned through the minute
    # before; reading a day more of every pair's features, for a fresh learner that finds
    # stored predictions (a lost checkpoint), would double a one-day chunk's read.

    @property
    def steady_learning_reach(self) -> timedelta:
        """The features and outcomes a learner learned through the minute before reads: those
        of the predictions whose outcome matured, the horizon and the grace back. serve's
        chunk reads features from this far before its first minute (the prefetch), and the
        live reader keeps a minute's rows cached this long."""
        return timedelta(minutes=self.horizon_minutes + self.realized_grace_minutes)

    @property
    def fresh_learning_reach(self) -> timedelta:
        """The stored predictions a learner asks for at each step: back to its watermark, and
        at most this far (a fresh learner: the horizon and `lookback_minutes`). serve's
        chunk mirrors predictions from this far before its first minute (BatchedStore), so
        that no step's ask falls through to the database."""
        return timedelta(minutes=self.horizon_minutes + self.lookback_minutes)
