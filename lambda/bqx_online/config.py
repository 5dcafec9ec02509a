"""The online learner's configuration: built once at the edge (CLI, handler), passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """Members and weighting of the adaptive ensemble.

    temperature: weights are softmax(-recent_mae / τ); None makes τ the median of the members'
    recent MAEs (scale-free, so the weighting means the same for any target scale).
    """

    arf_models: int = 10
    bagged_models: int = 3
    use_srp: bool = False  # SRP Hoeffding trees instead of bagged ones
    learning_rate: float = 0.01  # the linear member's SGD step
    error_window: int = 100
    min_errors: int = 10  # equal weights until every member has this many errors
    temperature: float | None = None
    clip_margin: float = 0.1  # member predictions stay within the learned targets' range ± 10%
    seed: int = 7


@dataclass(frozen=True)
class DriftConfig:
    """ADWIN on the absolute-error stream and the plan's 1.5 × baseline-MAE rule."""

    adwin_delta: float = 0.002  # river's default; on errors in MAE units (see drift.py)
    adwin_clock: int = 1  # check every sample: alarms a few minutes sooner, cost is tiny
    adwin_grace: int = 100
    mae_ratio: float = 1.5
    recent_window: int = 100
    baseline_window: int = 500  # errors after warm-up (or after an alarm) that set the baseline
    warmup: int = 200  # learned samples before any alarm (the members are still converging)


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
