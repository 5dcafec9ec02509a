"""The multi-task nets' rows: inputs (features + embeddings) and targets, kept apart.

An input row of (pair, minute) is bqx.ml_feature_matrix ⨝ bqx.ml_cross_pair_features (the
autoencoder's input, read by `feature_reader`) ⨝ the 64 values of bqx.autoencoder_embeddings.
The targets of bqx.ml_targets are read in the same pass as *extra* columns that feature_reader
keeps in their own array, so nothing but the feature views and the embeddings can reach `x`.
Rows stay in time order (the samples are time-ordered subsets of each period).

The regime classes are read from the seed bqx.regime_thresholds: one class per label the
plan's classify_regime can return (six with the default seed: five rules and the fallback),
indexed by regime_code, which is what ml_targets.regime_t60_code holds.

Beside the targets, scored rows carry `vol_now`, the realised vol_t60 known at t: the std of
bqx_60 over t−59 … t, which is vol_t60 of the row 60 minutes earlier (its horizon ended at t).
It is the persistence forecast of vol_t60 and an input of the HAR baseline, read apart from
`x` so the nets' inputs stay the feature views and the embeddings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.errors import BqxUserError
from bqx.feature_reader import (
    SCHEMA,
    ExtraColumns,
    InputColumn,
    KeyFilter,
    epoch_to_datetime,
    read_input,
    sample_input,
)
from bqx.periods import Period
from models_ml.autoencoder.embeddings import EMBEDDING_COLUMNS
from models_ml.autoencoder.embeddings import TABLE as EMBEDDINGS_TABLE

log = logging.getLogger(__name__)

TARGETS_TABLE = "ml_targets"
REGIME_SEED = "regime_thresholds"
TARGET_NAMES = ("bqx_t60", "vol_t60", "regime_t60_code")
PERSISTENCE_FEATURE = "bqx_60"  # bqx now: the persistence forecast of bqx at t+60
HORIZON_SECONDS = 60 * 60  # the targets' horizon (target_horizon_minutes() in dbt)

EMBEDDINGS = ExtraColumns(
    EMBEDDINGS_TABLE,
    tuple(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in EMBEDDING_COLUMNS),
)
TARGETS = ExtraColumns(
    TARGETS_TABLE, tuple(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in TARGET_NAMES)
)


@dataclass(frozen=True)
class Targets:
    bqx: np.ndarray  # float32 (n,) bqx_t60, percent
    vol: np.ndarray  # float32 (n,) vol_t60
    regime: np.ndarray  # int64 (n,) regime_t60_code, an index into the class list

    def __len__(self) -> int:
        return len(self.bqx)


@dataclass(frozen=True)
class PairRows:
    """Rows of one pair and period, in time order: keys, inputs, and (apart) the targets."""

    pair: str
    ts_epoch: np.ndarray  # int64 (n,)
    x: np.ndarray  # float32 (n, width): features, then the 64 embedding values
    targets: Targets | None
    vol_now: np.ndarray | None = None  # float64 (n,) realised vol at t (NaN where unknown)

    def __len__(self) -> int:
        return len(self.ts_epoch)


def input_names(columns: list[InputColumn]) -> list[str]:
    """The input columns of a multi-task net, in order."""
    return [c.name for c in columns] + list(EMBEDDING_COLUMNS)


def regime_classes(conn: psycopg2.extensions.connection) -> list[str]:
    """Labels classify_regime can return, indexed by regime_code (from the seed table)."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f"{SCHEMA}.{REGIME_SEED}",))
        if cur.fetchone()[0] is None:
            raise BqxUserError(f"{SCHEMA}.{REGIME_SEED} does not exist yet: run `bqx build` first")
        cur.execute(
            sql.SQL("select regime, regime_code from {}.{} order by regime_code").format(
                sql.Identifier(SCHEMA), sql.Identifier(REGIME_SEED)
            )
        )
        rows = cur.fetchall()
    codes = [int(code) for _, code in rows]
    if codes != list(range(len(rows))) or len({label for label, _ in rows}) != len(rows):
        raise BqxUserError(
            f"{SCHEMA}.{REGIME_SEED} must give each label one regime_code, 0 … n-1: {rows}"
        )
    return [label for label, _ in rows]


def require_inputs(conn: psycopg2.extensions.connection) -> None:
    """Clear errors when the embeddings or the targets have not been written yet."""
    with conn.cursor() as cur:
        for table, hint in ((EMBEDDINGS_TABLE, "bqx embed"), (TARGETS_TABLE, "bqx build")):
            cur.execute("select to_regclass(%s)", (f"{SCHEMA}.{table}",))
            if cur.fetchone()[0] is None:
                raise BqxUserError(f"{SCHEMA}.{table} does not exist yet: run `{hint}` first")


def _split(block, pair: str, with_targets: bool) -> PairRows:
    extras = block.extras
    width = len(EMBEDDING_COLUMNS)
    x = np.hstack([block.features, extras[:, :width]]).astype(np.float32)
    targets = None
    if with_targets:
        y = extras[:, width:]
        targets = Targets(
            bqx=y[:, 0].astype(np.float32),
            vol=y[:, 1].astype(np.float32),
            regime=y[:, 2].astype(np.int64),
        )
    return PairRows(pair, block.ts_epoch, x, targets)


def sample_rows(
    conn: psycopg2.extensions.connection,
    columns: list[InputColumn],
    period: Period,
    pair: str,
    rows: int,
    seed: int,
) -> PairRows:
    """About `rows` rows of one pair in `period` (seeded, time-ordered), with targets."""
    sample = sample_input(conn, columns, period, rows, seed, (pair,), extras=(EMBEDDINGS, TARGETS))
    block = _Block(sample.ts_epoch, sample.features, sample.extras)
    return with_vol_now(conn, _split(block, pair, with_targets=True))


def read_rows(
    conn: psycopg2.extensions.connection,
    columns: list[InputColumn],
    pair: str,
    start: datetime,
    end: datetime,
    with_targets: bool = False,
    key_filter: KeyFilter | None = None,
) -> PairRows:
    """Every input row of one pair in [start, end) (the caller's transaction)."""
    extras = (EMBEDDINGS, TARGETS) if with_targets else (EMBEDDINGS,)
    block = read_input(conn, columns, pair, start, end, key_filter, extras)
    rows = _split(block, pair, with_targets)
    return with_vol_now(conn, rows) if with_targets else rows


def realised_vol_now(
    conn: psycopg2.extensions.connection, pair: str, ts_epoch: np.ndarray
) -> np.ndarray:
    """vol_t60 of the row one horizon before each minute (float64; NaN where there is none,
    e.g. the first hour of a segment): the std of bqx_60 over t−59 … t, known at t."""
    out = np.full(len(ts_epoch), np.nan)
    if not len(ts_epoch):
        return out
    wanted = np.asarray(ts_epoch, np.int64) - HORIZON_SECONDS
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "select extract(epoch from ts_utc)::bigint, vol_t60 from {}.{} "
                "where pair = %s and ts_utc >= %s and ts_utc <= %s order by ts_utc"
            ).format(sql.Identifier(SCHEMA), sql.Identifier(TARGETS_TABLE)),
            (pair, epoch_to_datetime(wanted.min()), epoch_to_datetime(wanted.max())),
        )
        found = cur.fetchall()
    if not found:
        return out
    keys = np.array([k for k, _ in found], np.int64)
    values = np.array([v for _, v in found], np.float64)
    at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
    hit = keys[at] == wanted
    out[hit] = values[at[hit]]
    return out


def with_vol_now(conn: psycopg2.extensions.connection, rows: PairRows) -> PairRows:
    return replace(rows, vol_now=realised_vol_now(conn, rows.pair, rows.ts_epoch))


@dataclass(frozen=True)
class _Block:
    ts_epoch: np.ndarray
    features: np.ndarray
    extras: np.ndarray


def class_frequencies(regime: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Share of each class (0 for a class never seen)."""
    counts = np.bincount(regime, minlength=len(classes)).astype(float)
    total = counts.sum()
    return {label: (counts[i] / total if total else 0.0) for i, label in enumerate(classes)}


def target_class_frequencies(
    conn: psycopg2.extensions.connection, classes: list[str], pairs: list[str]
) -> dict[str, dict[str, float | int]]:
    """Per pair, the share of each regime_t60 class over all of bqx.ml_targets (+ the count)."""
    out: dict[str, dict[str, float | int]] = {}
    with conn.cursor() as cur:
        for pair in pairs:
            cur.execute(
                sql.SQL(
                    "select regime_t60_code, count(*) from {}.{} where pair = %s group by 1"
                ).format(sql.Identifier(SCHEMA), sql.Identifier(TARGETS_TABLE)),
                (pair,),
            )
            counts = dict(cur.fetchall())
            total = sum(counts.values())
            shares: dict[str, float | int] = {
                label: (counts.get(i, 0) / total if total else 0.0)
                for i, label in enumerate(classes)
            }
            shares["rows"] = total
            out[pair] = shares
    return out
