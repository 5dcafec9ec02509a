"""The rows the online learner writes, whatever the back end."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Prediction:
    pair: str
    ts_utc: datetime  # the minute whose features made the prediction
    horizon_minutes: int
    prediction: float
    member_predictions: dict[str, float]
    weights: dict[str, float]
    static_prediction: float | None = None
    realized: float | None = None  # bqx_60 at ts_utc + horizon, once learned
    learned_at: datetime | None = None


@dataclass(frozen=True)
class DriftEvent:
    pair: str
    ts_utc: datetime  # the minute the evidence became known
    detector: str  # 'skill_cusum' ('adwin' | 'mae_ratio' | 'page_hinkley' in older rows)
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WeightRow:
    pair: str
    ts_utc: datetime
    member: str
    weight: float
    recent_mae: float | None


@dataclass(frozen=True)
class Learned:
    """An outcome the model has learned: written back to its prediction row."""

    pair: str
    ts_utc: datetime
    horizon_minutes: int
    realized: float
    learned_at: datetime


@dataclass(frozen=True)
class Snapshot:
    """What a checkpoint saves: the pickled learner and where its learning stands."""

    blob: bytes
    ts_utc: datetime
    learned_through: datetime | None
    n_learned: int


@dataclass(frozen=True)
class CheckpointInfo:
    pair: str
    version: int
    location: str  # file path or s3:// URI
    ts_utc: datetime
    learned_through: datetime | None
    n_learned: int


# The parts of a handler step, in order (StepReport.<part>_seconds; bqx.online_steps columns)
STEP_PARTS = ("predict", "learn", "checkpoint")
