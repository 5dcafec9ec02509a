"""The default back end: the project's PostgreSQL, checkpoint files under
$BQX_HOME/artifacts/online/<PAIR>/v<version>.pkl.

Tables (bqx/sql/online.sql, created idempotently): bqx.online_predictions, bqx.drift_events,
bqx.ensemble_weights, bqx.online_checkpoints, bqx.online_checkpoint_pointer and
bqx.online_steps. A checkpoint
file is written to a temporary name, fsynced and renamed; its row and the pointer then change
in one transaction, so a reader sees the old version or the new one, never half of either.
The alarm is a NOTIFY on channel `bqx_drift` (plus a warning in the log).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import psycopg2.extensions
from psycopg2.extras import Json, execute_values

from bqx.sql import apply_ddl
from bqx_online.checkpoint_key import CheckpointKey, CheckpointRefused
from bqx_online.records import (
    STEP_PARTS,
    CheckpointInfo,
    DriftEvent,
    Learned,
    Prediction,
    Snapshot,
    WeightRow,
)

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "bqx_drift"


class PostgresPredictions:
    """The stored predictions, read only (storage.PredictionReader): nothing is created, no
    table, checkpoint directory or key, so it may open a database that may only be read
    (bench/online_real.py --tune-gate). PostgresStore reads them with the same query."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn

    def predictions(
        self, pair: str, horizon: int, after: datetime, until: datetime
    ) -> list[Prediction]:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                select pair, ts_utc, horizon_minutes, prediction, member_predictions, weights,
                       static_prediction, realized, learned_at
                from bqx.online_predictions
                where pair = %s and horizon_minutes = %s and ts_utc > %s and ts_utc <= %s
                order by ts_utc
                """,
                (pair, horizon, after, until),
            )
            return [Prediction(*row) for row in cur.fetchall()]


class PostgresStore(PostgresPredictions):
    def __init__(
        self,
        conn: psycopg2.extensions.connection,
        checkpoint_dir: Path,
        keep: int = 3,
        key: CheckpointKey | None = None,
    ) -> None:
        super().__init__(conn)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.keep = keep
        # the digest key (checkpoint_key.py): BQX_ONLINE_CHECKPOINT_KEY, else a key file
        self.key = key or CheckpointKey.load(os.environ, self.checkpoint_dir)

    def ensure(self) -> None:
        with self.conn, self.conn.cursor() as cur:
            apply_ddl(cur, "online")
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ predictions
    def put_predictions(self, predictions: list[Prediction]) -> list[bool]:
        rows = [
            (
                p.pair,
                p.ts_utc,
                p.horizon_minutes,
                p.prediction,
                Json(p.member_predictions),
                Json(p.weights),
                p.static_prediction,
            )
            for p in predictions
        ]
        with self.conn, self.conn.cursor() as cur:
            written = execute_values(
                cur,
                """
                insert into bqx.online_predictions (pair, ts_utc, horizon_minutes, prediction,
                    member_predictions, weights, static_prediction)
                values %s
                on conflict (pair, ts_utc, horizon_minutes) do nothing
                returning pair, ts_utc
                """,
                rows,
                fetch=True,
            )
        keys = {(pair, ts) for pair, ts in written}
        return [(p.pair, p.ts_utc) in keys for p in predictions]

    def mark_learned(self, learned: list[Learned]) -> None:
        rows = [(m.pair, m.ts_utc, m.horizon_minutes, m.realized, m.learned_at) for m in learned]
        with self.conn, self.conn.cursor() as cur:
            execute_values(
                cur,
                """
                update bqx.online_predictions as p
                set realized = v.realized, learned_at = v.learned_at
                from (values %s) as v (pair, ts_utc, horizon_minutes, realized, learned_at)
                where p.pair = v.pair and p.ts_utc = v.ts_utc
                  and p.horizon_minutes = v.horizon_minutes and p.learned_at is null
                """,
                rows,
                template="(%s, %s::timestamptz, %s::int, %s::float8, %s::timestamptz)",
            )

    # ------------------------------------------------------------------ weights, drift
    def put_weights(self, rows: list[WeightRow]) -> None:
        with self.conn, self.conn.cursor() as cur:
            execute_values(
                cur,
                """
                insert into bqx.ensemble_weights (pair, ts_utc, member, weight, recent_mae)
                values %s
                on conflict (pair, ts_utc, member)
                do update set weight = excluded.weight, recent_mae = excluded.recent_mae
                """,
                [(r.pair, r.ts_utc, r.member, r.weight, r.recent_mae) for r in rows],
            )

    def put_drift_events(self, events: list[DriftEvent]) -> list[bool]:
        with self.conn, self.conn.cursor() as cur:
            written = execute_values(
                cur,
                """
                insert into bqx.drift_events (pair, ts_utc, detector, evidence) values %s
                on conflict (pair, ts_utc, detector) do nothing
                returning pair, ts_utc, detector
                """,
                [(e.pair, e.ts_utc, e.detector, Json(e.evidence)) for e in events],
                fetch=True,
            )
        keys = set(written)
        return [(e.pair, e.ts_utc, e.detector) in keys for e in events]

    def drift_events(self, pair: str) -> list[DriftEvent]:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "select pair, ts_utc, detector, evidence from bqx.drift_events "
                "where pair = %s order by ts_utc, detector",
                (pair,),
            )
            return [DriftEvent(*row) for row in cur.fetchall()]

    def alert(self, events: list[DriftEvent]) -> None:
        with self.conn, self.conn.cursor() as cur:
            for e in events:
                payload = {"pair": e.pair, "ts_utc": e.ts_utc.isoformat(), "detector": e.detector}
                cur.execute("select pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(payload)))

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, pair: str, snapshot: Snapshot) -> CheckpointInfo:
        blob, ts_utc = snapshot.blob, snapshot.ts_utc
        learned_through, n_learned = snapshot.learned_through, snapshot.n_learned
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "select coalesce(max(version), 0) + 1 from bqx.online_checkpoints where pair = %s",
                (pair,),
            )
            version = int(cur.fetchone()[0])
        path = self.checkpoint_dir / pair / f"v{version:08d}.pkl"
        digest = self.key.digest(blob)
        _write_atomically(path, blob)
        with self.conn, self.conn.cursor() as cur:  # the version row and the pointer, together
            cur.execute(
                """
                insert into bqx.online_checkpoints
                    (pair, version, path, ts_utc, learned_through, n_learned, digest)
                values (%s, %s, %s, %s, %s, %s, %s)
                on conflict (pair, version) do update set path = excluded.path,
                    ts_utc = excluded.ts_utc, learned_through = excluded.learned_through,
                    n_learned = excluded.n_learned, digest = excluded.digest,
                    created_at = now()
                """,
                (pair, version, str(path), ts_utc, learned_through, n_learned, digest),
            )
            cur.execute(
                """
                insert into bqx.online_checkpoint_pointer (pair, version) values (%s, %s)
                on conflict (pair) do update set version = excluded.version, updated_at = now()
                """,
                (pair, version),
            )
            cur.execute(
                "delete from bqx.online_checkpoints where pair = %s and version <= %s "
                "returning path",
                (pair, version - self.keep),
            )
            stale = [row[0] for row in cur.fetchall()]
        for old in stale:  # after the commit: the pointer no longer names them
            Path(old).unlink(missing_ok=True)
        return CheckpointInfo(pair, version, str(path), ts_utc, learned_through, n_learned)

    def load_checkpoint(self, pair: str) -> tuple[CheckpointInfo, bytes] | None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                select c.version, c.path, c.ts_utc, c.learned_through, c.n_learned, c.digest
                from bqx.online_checkpoint_pointer as p
                join bqx.online_checkpoints as c on c.pair = p.pair and c.version = p.version
                where p.pair = %s
                """,
                (pair,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        version, path, ts_utc, learned_through, n_learned, digest = row
        info = CheckpointInfo(pair, version, path, ts_utc, learned_through, n_learned)
        what = f"checkpoint v{version} of {pair} ({path})"
        # the path comes from the database: read only files of our own checkpoint directory
        if not Path(path).resolve().is_relative_to(self.checkpoint_dir.resolve()):
            raise CheckpointRefused(f"{what} lies outside {self.checkpoint_dir}: not read")
        return info, self.key.check(Path(path).read_bytes(), digest, what)

    def reset(self, pair: str) -> None:
        with self.conn, self.conn.cursor() as cur:
            for table in (
                "online_predictions",
                "ensemble_weights",
                "drift_events",
                "online_checkpoint_pointer",
                "online_checkpoints",
            ):
                # table names are constants of this module, never user text
                cur.execute(f"delete from bqx.{table} where pair = %s", (pair,))
        for old in (self.checkpoint_dir / pair).glob("v*.pkl"):
            old.unlink()

    def put_step_metrics(
        self, ts_utc: datetime, seconds: float, pairs: int, parts: Mapping[str, float]
    ) -> None:
        """One row of bqx.online_steps (the dashboard's live latency panel reads it)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                insert into bqx.online_steps (ts_utc, pairs, seconds, predict_seconds,
                    learn_seconds, checkpoint_seconds)
                values (%s, %s, %s, %s, %s, %s)
                """,
                (ts_utc, pairs, seconds, *(parts.get(name) for name in STEP_PARTS)),
            )

    def close(self) -> None:
        self.conn.close()


def _write_atomically(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
