"""The one storage interface of the online learner, and the choice of back end.

Two real back ends implement it: `storage_postgres.PostgresStore` (the project's PostgreSQL,
checkpoint files under $BQX_HOME/artifacts/online/) and `storage_aws.AwsStore` (DynamoDB,
S3, CloudWatch). The service uses nothing else, so the same tests run against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from bqx_online.records import CheckpointInfo, DriftEvent, Learned, Prediction, Snapshot, WeightRow


class PredictionReader(Protocol):
    """The stored predictions alone (what evaluation reads; a read-only reader suffices)."""

    def predictions(
        self, pair: str, horizon: int, after: datetime, until: datetime
    ) -> list[Prediction]:
        """Stored predictions of a pair with after < ts_utc <= until, oldest first."""


class OnlineStore(PredictionReader, Protocol):
    def ensure(self) -> None:
        """Create what the store needs, idempotently (tables; bucket and table in dev/test)."""

    def put_predictions(self, predictions: list[Prediction]) -> list[bool]:
        """Store each prediction unless one exists for its key; True where it was written."""

    def mark_learned(self, learned: list[Learned]) -> None:
        """Record realized values and learned_at on their prediction rows."""

    def put_weights(self, rows: list[WeightRow]) -> None:
        """Store ensemble weights (a re-written key is overwritten with the same values)."""

    def put_drift_events(self, events: list[DriftEvent]) -> list[bool]:
        """Store events unless one exists for (pair, ts_utc, detector); True where new."""

    def drift_events(self, pair: str) -> list[DriftEvent]:
        """The stored drift events of a pair, oldest first."""

    def alert(self, events: list[DriftEvent]) -> None:
        """Raise the alarm for new drift events (NOTIFY / a CloudWatch metric)."""

    def save_checkpoint(self, pair: str, snapshot: Snapshot) -> CheckpointInfo:
        """Write a new version, then move the pair's pointer to it; return the new version."""

    def load_checkpoint(self, pair: str) -> tuple[CheckpointInfo, bytes] | None:
        """The version the pointer names, or None when the pair has none."""

    def reset(self, pair: str) -> None:
        """Forget a pair: its predictions, weights, drift events and checkpoint pointer."""

    def put_step_metrics(
        self, ts_utc: datetime, seconds: float, pairs: int, parts: Mapping[str, float]
    ) -> None:
        """Record how long one minute step took, and its parts (STEP_PARTS: seconds)."""

    def close(self) -> None: ...
