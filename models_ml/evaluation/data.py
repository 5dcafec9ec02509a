"""Rows of one pair for the walk-forward evaluation, streamed from the dbt views.

Two reads per pair, each view alone and joined on the minute in numpy (bqx.feature_reader):
a seeded hash sample of the whole span for training (a row budget per pair keeps CPU low),
and every minute of the test span for scoring. Beside the features: the targets bqx_t60,
vol_t60 and regime_t60_code from bqx.ml_targets and the realised vol known at t (vol_now, the
persistence forecast and a HAR input), the 64 embeddings of bqx.autoencoder_embeddings when
that pair has them, the close of int_m1_series at t and t+60 (the trading view's return), and
the stored predictions of the multi-task nets (bqx_t60, vol_t60 and the regime probabilities)
and of the online ensemble when those tables exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
from models_ml.multitask.data import realised_vol_now

SCHEMA = "bqx"
EMBEDDING_TABLE = "autoencoder_embeddings"
EMBEDDING_COLUMNS = tuple(f"emb_{i:02d}" for i in range(64))
MULTITASK_TABLE = "multitask_predictions"
ONLINE_TABLE = "online_predictions"
HORIZON_SECONDS = 3600
TARGET_COLUMNS = ("bqx_t60", "vol_t60", "regime_t60_code")
TARGETS = ExtraColumns(
    "ml_targets", tuple(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in TARGET_COLUMNS)
)
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
    vol: np.ndarray | None = None  # float64 (n,): vol_t60
    regime: np.ndarray | None = None  # float64 (n,): regime_t60_code (NaN when unknown)
    vol_now: np.ndarray | None = None  # float64 (n,): realised vol known at t (NaN: unknown)

    def __len__(self) -> int:
        return len(self.ts_epoch)


@dataclass(frozen=True)
class StoredMultitask:
    """The stored predictions of `bqx predict multitask` at each test minute (NaN: none)."""

    bqx: np.ndarray  # (n,)
    vol: np.ndarray  # (n,)
    proba: np.ndarray  # (n, classes), regime class probabilities by regime_code


@dataclass(frozen=True)
class HeldOutRows:
    """Every test-span minute of a pair, with what the trading view and stored models need."""

    rows: PairRows
    close: np.ndarray  # close at t (nan when unknown)
    log_return: np.ndarray  # ln(close(t+60) / close(t)), nan when t+60 has no bar
    multitask: StoredMultitask
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
    k = len(TARGET_COLUMNS)
    extras = block.extras[:, :k].astype(np.float64)
    return PairRows(
        ts_epoch=block.ts_epoch,
        base=block.features[:, :base_width],
        cross=block.features[:, base_width:],
        embeddings=block.extras[:, k:] if with_embeddings else None,
        target=extras[:, 0],
        vol=extras[:, 1],
        regime=extras[:, 2],
    )


def _with_vol_now(conn: psycopg2.extensions.connection, pair: str, rows: PairRows) -> PairRows:
    return replace(rows, vol_now=realised_vol_now(conn, pair, rows.ts_epoch))


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
    return _with_vol_now(conn, pair, _split(block, base_width, with_embeddings))


def read_test_rows(
    conn: psycopg2.extensions.connection,
    columns: list[InputColumn],
    pair: str,
    start: datetime,
    end: datetime,
    with_embeddings: bool,
    classes: list[str],
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
        vol=np.concatenate([p.vol for p in parts]),
        regime=np.concatenate([p.regime for p in parts]),
    )
    rows = _with_vol_now(conn, pair, rows)
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
        multitask=_stored_multitask(conn, classes, pair, start, end, rows.ts_epoch),
        online=_stored(conn, ONLINE_TABLE, ["prediction"], pair, start, end, rows.ts_epoch)[:, 0],
    )


def _stored_multitask(
    conn: psycopg2.extensions.connection,
    classes: list[str],
    pair: str,
    start: datetime,
    end: datetime,
    wanted: np.ndarray,
) -> StoredMultitask:
    columns = ["bqx_t60_pred", "vol_t60_pred", *(f"p_{label}" for label in classes)]
    values = _stored(conn, MULTITASK_TABLE, columns, pair, start, end, wanted)
    return StoredMultitask(values[:, 0], values[:, 1], values[:, 2:])


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
    columns: list[str],
    pair: str,
    start: datetime,
    end: datetime,
    wanted: np.ndarray,
) -> np.ndarray:
    """Stored prediction columns aligned to `wanted` minutes, (n, columns) (nan when the
    table or a column is absent)."""
    out = np.full((len(wanted), len(columns)), np.nan)
    if not relation_exists(conn, table):
        return out
    with conn.cursor() as cur:
        cur.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (SCHEMA, table),
        )
        present = {name for (name,) in cur.fetchall()}
        kept = [c for c in columns if c in present]
        if not kept:
            return out
        where = sql.SQL("horizon_minutes = 60 and ") if table == ONLINE_TABLE else sql.SQL("")
        cur.execute(
            sql.SQL(
                "select extract(epoch from ts_utc)::bigint, {columns} from {schema}.{table} "
                "where {where}pair = %s and ts_utc >= %s and ts_utc < %s order by ts_utc"
            ).format(
                columns=sql.SQL(", ").join(
                    sql.SQL("{}::float8").format(sql.Identifier(c)) for c in kept
                ),
                schema=sql.Identifier(SCHEMA),
                table=sql.Identifier(table),
                where=where,
            ),
            (pair, start, end),
        )
        found = np.array(cur.fetchall(), dtype=np.float64).reshape(-1, len(kept) + 1)
    keys = found[:, 0].astype(np.int64)
    for column, values in zip(kept, found[:, 1:].T, strict=True):
        out[:, columns.index(column)] = _lookup(keys, values, wanted)
    return out
