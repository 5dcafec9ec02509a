"""Rows of one pair for the walk-forward evaluation, streamed from the dbt views.

Two reads per pair, each view alone and joined on the minute in numpy (bqx.feature_reader):
a seeded hash sample of the whole span for training (a row budget per pair keeps CPU low),
and every minute of the test span for scoring. Beside the features: the target bqx_t60 from
bqx.ml_targets, the 64 embeddings of bqx.autoencoder_embeddings when that pair has them, the
close of int_m1_series at t and t+60 (the trading view's return), and the stored predictions
of the multi-task nets and of the online ensemble when those tables exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.feature_reader import (
    ExtraColumns,
    InputBlock,
    InputColumn,
    KeyFilter,
    grid_rows,
    month_starts,
    next_month,
    read_input,
    read_view,
)
from bqx.periods import Period

SCHEMA = "bqx"
EMBEDDING_TABLE = "autoencoder_embeddings"
EMBEDDING_COLUMNS = tuple(f"emb_{i:02d}" for i in range(64))
MULTITASK_TABLE = "multitask_predictions"
ONLINE_TABLE = "online_predictions"
HORIZON_SECONDS = 3600
TARGETS = ExtraColumns("ml_targets", (sql.SQL("bqx_t60::float8"),))
EMBEDDINGS = ExtraColumns(
    EMBEDDING_TABLE,
    tuple(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in EMBEDDING_COLUMNS),
)


@dataclass(frozen=True)
class PairRows:
    """Rows of one pair in time order: features split by layer, target, and extras."""

    ts_epoch: np.ndarray  # int64 (n,)
    base: np.ndarray  # float32 (n, base width): bqx.ml_feature_matrix
    cross: np.ndarray  # float32 (n, cross width): bqx.ml_cross_pair_features
    embeddings: np.ndarray | None  # float32 (n, 64), None when the pair has none
    target: np.ndarray  # float64 (n,): bqx_t60

    def __len__(self) -> int:
        return len(self.ts_epoch)


@dataclass(frozen=True)
class HeldOutRows:
    """Every test-span minute of a pair, with what the trading view and stored models need."""

    rows: PairRows
    close: np.ndarray  # close at t (nan when unknown)
    log_return: np.ndarray  # ln(close(t+60) / close(t)), nan when t+60 has no bar
    multitask: np.ndarray  # stored multi-task prediction of bqx_t60, nan when absent
    online: np.ndarray  # stored online prediction of bqx_60 at t+60, nan when absent


def relation_exists(conn: psycopg2.extensions.connection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f"{SCHEMA}.{name}",))
        return cur.fetchone()[0] is not None


def has_embeddings(conn: psycopg2.extensions.connection, pair: str) -> bool:
    if not relation_exists(conn, EMBEDDING_TABLE):
        return False
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("select exists (select 1 from {}.{} where pair = %s)").format(
                sql.Identifier(SCHEMA), sql.Identifier(EMBEDDING_TABLE)
            ),
            (pair,),
        )
        return bool(cur.fetchone()[0])


def _split(block: InputBlock, base_width: int, with_embeddings: bool) -> PairRows:
    extras = block.extras
    return PairRows(
        ts_epoch=block.ts_epoch,
        base=block.features[:, :base_width],
        cross=block.features[:, base_width:],
        embeddings=extras[:, 1:] if with_embeddings else None,
        target=extras[:, 0].astype(np.float64),
    )


def read_train_sample(
    conn: psycopg2.extensions.connection,
    columns: list[InputColumn],
    pair: str,
    start: datetime,
    end: datetime,
    budget: int,
    seed: int,
    with_embeddings: bool,
) -> PairRows:
    """About `budget` rows of the pair before the last test block, hash-sampled (seeded)."""
    base_width = sum(c.view == "ml_feature_matrix" for c in columns)
    available = max(grid_rows(conn, pair, Period("sample", start, end)), 1)
    key_filter = KeyFilter(seed=seed, fraction=budget / available)
    extras = [TARGETS, EMBEDDINGS] if with_embeddings else [TARGETS]
    block = read_input(conn, columns, pair, start, end, key_filter, extras)
    return _split(block, base_width, with_embeddings)


def read_test_rows(
    conn: psycopg2.extensions.connection,
    columns: list[InputColumn],
    pair: str,
    start: datetime,
    end: datetime,
    with_embeddings: bool,
) -> HeldOutRows:
    """Every minute of the pair in [start, end), month by month, with prices and predictions."""
    base_width = sum(c.view == "ml_feature_matrix" for c in columns)
    extras = [TARGETS, EMBEDDINGS] if with_embeddings else [TARGETS]
    parts = []
    for month in month_starts(start, end):
        lo, hi = max(month, start), min(next_month(month), end)
        parts.append(
            _split(
                read_input(conn, columns, pair, lo, hi, None, extras), base_width, with_embeddings
            )
        )
    rows = PairRows(
        ts_epoch=np.concatenate([p.ts_epoch for p in parts]),
        base=np.concatenate([p.base for p in parts]),
        cross=np.concatenate([p.cross for p in parts]),
        embeddings=np.concatenate([p.embeddings for p in parts]) if with_embeddings else None,
        target=np.concatenate([p.target for p in parts]),
    )
    close_keys, close = read_view(
        conn,
        "int_m1_series",
        [sql.SQL("close::float8")],
        pair,
        start,
        end + timedelta(seconds=2 * HORIZON_SECONDS),
    )
    now = _lookup(close_keys, close[:, 0].astype(np.float64), rows.ts_epoch)
    ahead = _lookup(close_keys, close[:, 0].astype(np.float64), rows.ts_epoch + HORIZON_SECONDS)
    return HeldOutRows(
        rows=rows,
        close=now,
        log_return=np.log(ahead / now),
        multitask=_stored(conn, MULTITASK_TABLE, "bqx_t60_pred", pair, start, end, rows.ts_epoch),
        online=_stored(conn, ONLINE_TABLE, "prediction", pair, start, end, rows.ts_epoch),
    )


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values at the wanted keys (nan where a key is missing)."""
    out = np.full(len(wanted), np.nan)
    if len(keys) == 0:
        return out
    at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
    found = keys[at] == wanted
    out[found] = values[at[found]]
    return out


def _stored(
    conn: psycopg2.extensions.connection,
    table: str,
    column: str,
    pair: str,
    start: datetime,
    end: datetime,
    wanted: np.ndarray,
) -> np.ndarray:
    """A stored prediction column aligned to `wanted` minutes (nan when the table is absent)."""
    if not relation_exists(conn, table):
        return np.full(len(wanted), np.nan)
    where = sql.SQL("horizon_minutes = 60 and ") if table == ONLINE_TABLE else sql.SQL("")
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "select extract(epoch from ts_utc)::bigint, {column}::float8 from {schema}.{table} "
                "where {where}pair = %s and ts_utc >= %s and ts_utc < %s order by ts_utc"
            ).format(
                column=sql.Identifier(column),
                schema=sql.Identifier(SCHEMA),
                table=sql.Identifier(table),
                where=where,
            ),
            (pair, start, end),
        )
        found = np.array(cur.fetchall(), dtype=np.float64).reshape(-1, 2)
    return _lookup(found[:, 0].astype(np.int64), found[:, 1], wanted)
