"""`bqx predict multitask`: every input row of the trained pairs → bqx.multitask_predictions.

Partitioned like the feature tables and bqx.autoencoder_embeddings: LIST(pair) →
`multitask_predictions_<pair>` by RANGE(ts_utc) → monthly leaves. Columns: pair, ts_utc,
bqx_t60_pred, vol_t60_pred (real, target units), regime_t60_code_pred (integer, argmax) and
one probability per regime class `p_<label>` (real). Each (pair, month) is one transaction:
truncate the leaf, COPY the new rows (binary), so a re-run gives the same rows. The input
columns are compared with the manifest's list before any work.
"""

from __future__ import annotations

import io
import logging
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.pairs import validate_pair
from bqx.periods import load_periods
from models_ml.autoencoder import standardize
from models_ml.feature_stream import (
    SCHEMA,
    ProgressCallback,
    input_columns,
    month_starts,
    next_month,
)
from models_ml.multitask_artifacts import MultitaskArtifacts, load_manifest, load_pair
from models_ml.multitask_data import input_names, read_rows, require_inputs
from models_ml.multitask_net import predict

log = logging.getLogger(__name__)

TABLE = "multitask_predictions"
_PG_EPOCH_SECONDS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class PredictConfig:
    pairs: tuple[str, ...] | None = None  # None: every pair in the manifest

    def __post_init__(self) -> None:
        if self.pairs is not None:
            object.__setattr__(self, "pairs", tuple(validate_pair(p) for p in self.pairs))


@dataclass(frozen=True)
class PredictResult:
    partitions: int
    rows: int
    seconds: float
    pairs: list[str]


def table_columns(classes: list[str]) -> list[str]:
    """Columns of bqx.multitask_predictions, in order, for these regime classes."""
    names = ["pair", "ts_utc", "bqx_t60_pred", "vol_t60_pred", "regime_t60_code_pred"]
    return names + [f"p_{label}" for label in classes]


def predict_multitask(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: PredictConfig,
    progress: ProgressCallback | None = None,
) -> PredictResult:
    artifacts = MultitaskArtifacts.of(settings)
    manifest = load_manifest(artifacts)
    require_inputs(conn)
    columns = input_columns(conn)
    if input_names(columns) != manifest["features"]:
        raise BqxUserError(
            "the input columns differ from the ones the multi-task nets were trained on: "
            "retrain with `bqx train multitask`"
        )
    trained = list(manifest["pairs"])
    pairs = list(config.pairs) if config.pairs else trained
    untrained = [p for p in pairs if p not in trained]
    if untrained:
        raise BqxUserError(f"no multi-task net for {', '.join(untrained)}: train it first")
    classes = list(manifest["regime_classes"])
    periods = load_periods(conn)
    months = month_starts(periods.train.start_utc, periods.test.end_utc)
    started = time.perf_counter()
    with conn:
        ensure_parent(conn, classes)
    partitions = rows = 0
    todo = [(pair, month) for pair in pairs for month in months]
    loaded: dict[str, tuple] = {}
    for done, (pair, month) in enumerate(todo, start=1):
        if pair not in loaded:
            loaded = {pair: load_pair(artifacts, pair)}  # one pair's net in memory at a time
        model, x_scaler, t_scaler = loaded[pair]
        with conn:
            block = read_rows(conn, columns, pair, month, next_month(month))
            if len(block):
                p = predict(model, standardize(x_scaler, block.x), t_scaler)
                values = np.column_stack([p.bqx, p.vol, p.regime_proba]).astype(np.float32)
                write_partition(conn, pair, month, block.ts_epoch, values, p.regime, classes)
                partitions += 1
                rows += len(block)
        if progress:
            progress("predicting", done, len(todo))
    seconds = time.perf_counter() - started
    log.info("wrote %d prediction rows in %d partitions in %.1f s", rows, partitions, seconds)
    return PredictResult(partitions, rows, seconds, pairs)


def pair_table(pair: str) -> str:
    return f"{TABLE}_{validate_pair(pair).lower()}"


def leaf_table(pair: str, month: datetime) -> str:
    return f"{pair_table(pair)}_{month:%Y_%m}"


def ensure_parent(conn: psycopg2.extensions.connection, classes: list[str]) -> None:
    """Create the parent if missing; refuse one with other columns (other classes)."""
    expected = table_columns(classes)
    definitions = [
        sql.SQL("{} real not null").format(sql.Identifier(name))
        for name in ("bqx_t60_pred", "vol_t60_pred")
    ]
    definitions.append(sql.SQL("regime_t60_code_pred integer not null"))
    definitions += [
        sql.SQL("{} real not null").format(sql.Identifier(f"p_{label}")) for label in classes
    ]
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "create table if not exists {}.{} (pair text not null, ts_utc timestamptz "
                "not null, {}, primary key (pair, ts_utc)) partition by list (pair)"
            ).format(sql.Identifier(SCHEMA), sql.Identifier(TABLE), sql.SQL(", ").join(definitions))
        )
        cur.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (SCHEMA, TABLE),
        )
        found = [name for (name,) in cur.fetchall()]
    if found != expected:
        raise BqxUserError(
            f"{SCHEMA}.{TABLE} exists with other columns: drop it "
            f"(drop table {SCHEMA}.{TABLE} cascade) and run `bqx predict multitask` again"
        )


def ensure_partition(conn: psycopg2.extensions.connection, pair: str, month: datetime) -> str:
    leaf = leaf_table(pair, month)
    schema = sql.Identifier(SCHEMA)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "create table if not exists {schema}.{pair_table} partition of {schema}.{parent} "
                "for values in ({pair}) partition by range (ts_utc)"
            ).format(
                schema=schema,
                pair_table=sql.Identifier(pair_table(pair)),
                parent=sql.Identifier(TABLE),
                pair=sql.Literal(validate_pair(pair)),
            )
        )
        cur.execute(
            sql.SQL(
                "create table if not exists {schema}.{leaf} partition of {schema}.{pair_table} "
                "for values from ({start}) to ({end})"
            ).format(
                schema=schema,
                leaf=sql.Identifier(leaf),
                pair_table=sql.Identifier(pair_table(pair)),
                start=sql.Literal(month),
                end=sql.Literal(next_month(month)),
            )
        )
    return leaf


def write_partition(
    conn: psycopg2.extensions.connection,
    pair: str,
    month: datetime,
    ts_epoch: np.ndarray,
    values: np.ndarray,
    regime: np.ndarray,
    classes: list[str],
) -> None:
    """Replace one leaf's rows (caller's transaction: truncate + binary COPY)."""
    if not np.isfinite(values).all():
        raise BqxUserError(f"the multi-task net produced NaN or inf for {pair} {month:%Y-%m}")
    leaf = sql.Identifier(ensure_partition(conn, pair, month))
    names = table_columns(classes)
    target = sql.SQL("{}.{} ({})").format(
        sql.Identifier(SCHEMA), leaf, sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("truncate table {}.{}").format(sql.Identifier(SCHEMA), leaf))
        copy = sql.SQL("copy {} from stdin with (format binary)").format(target)
        payload = binary_copy(pair, ts_epoch, values, regime)
        cur.copy_expert(copy.as_string(conn), io.BytesIO(payload))


def binary_copy(pair: str, ts_epoch: np.ndarray, values: np.ndarray, regime: np.ndarray) -> bytes:
    """Binary COPY rows: pair text, ts timestamptz, 2 float4, int4 code, class float4s."""
    n_classes = values.shape[1] - 2
    fields = [("count", ">i2"), ("pair_len", ">i4"), ("pair", "S6"), ("ts_len", ">i4")]
    fields += [("ts", ">i8")]
    value_fields = ["bqx", "vol", "code", *[f"p{i}" for i in range(n_classes)]]
    for name in value_fields:
        fields += [(f"{name}_len", ">i4"), (name, ">i4" if name == "code" else ">f4")]
    rows = np.zeros(len(ts_epoch), dtype=np.dtype(fields))
    rows["count"] = 2 + len(value_fields)
    rows["pair_len"] = 6
    rows["pair"] = pair.encode()
    rows["ts_len"] = 8
    rows["ts"] = (ts_epoch - _PG_EPOCH_SECONDS) * 1_000_000
    for name in value_fields:
        rows[f"{name}_len"] = 4
    rows["bqx"], rows["vol"], rows["code"] = values[:, 0], values[:, 1], regime
    for i in range(n_classes):
        rows[f"p{i}"] = values[:, 2 + i]
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    return header + rows.tobytes() + struct.pack(">h", -1)
