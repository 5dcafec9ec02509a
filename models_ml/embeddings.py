"""`bqx embed`: the trained encoder applied to every input row → bqx.autoencoder_embeddings.

The table is partitioned like the dbt feature tables, so later stages join it partition by
partition: parent `bqx.autoencoder_embeddings` by LIST(pair) → `autoencoder_embeddings_eurusd`
by RANGE(ts_utc) → monthly leaves `autoencoder_embeddings_eurusd_2024_01`; primary key
(pair, ts_utc); columns emb_00 … emb_63 real (the model computes in float32).

Before any work the database's input columns are compared with the manifest's list, in order:
a model never meets another feature matrix silently. Each (pair, month) is one transaction:
read the input, scale, encode, TRUNCATE the leaf and COPY the new rows (binary COPY, so the
float32 values are stored bit for bit). A re-run therefore gives the same rows, never
duplicates, and an interrupted run leaves every leaf either old or new. Leaves of the embedded
pairs that received no rows this time (data removed since) are emptied. Each pair's table
carries the model's sha256 in its comment, so readers can tell which model wrote it.
"""

from __future__ import annotations

import io
import logging
import pickle
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.pairs import PAIRS, validate_pair
from bqx.periods import load_periods
from models_ml.autoencoder import load_keras, standardize
from models_ml.feature_stream import (
    SCHEMA,
    InputBlock,
    ProgressCallback,
    input_columns,
    month_starts,
    next_month,
    read_input,
)
from models_ml.manifest import (
    EMBEDDING_DIM,
    AutoencoderArtifacts,
    check_features,
    load_manifest,
)

log = logging.getLogger(__name__)

TABLE = "autoencoder_embeddings"
EMBEDDING_COLUMNS = tuple(f"emb_{i:02d}" for i in range(EMBEDDING_DIM))
_PG_EPOCH_SECONDS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class EmbedConfig:
    pairs: tuple[str, ...] = PAIRS
    batch_size: int = 8192

    def __post_init__(self) -> None:
        object.__setattr__(self, "pairs", tuple(validate_pair(p) for p in self.pairs))


@dataclass(frozen=True)
class PartitionWrite:
    pair: str
    month: datetime
    table: str
    rows: int


@dataclass(frozen=True)
class EmbedResult:
    written: list[PartitionWrite]
    emptied: list[str]
    seconds: float
    model_sha256: str

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.written)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def pair_table(pair: str) -> str:
    return f"{TABLE}_{validate_pair(pair).lower()}"


def leaf_table(pair: str, month: datetime) -> str:
    return f"{pair_table(pair)}_{month:%Y_%m}"


def embed(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: EmbedConfig,
    progress: ProgressCallback | None = None,
) -> EmbedResult:
    """Encode every (pair, month) of the data and write it; see the module docstring."""
    artifacts = AutoencoderArtifacts.of(settings)
    manifest = load_manifest(artifacts)
    columns = input_columns(conn)
    check_features(manifest, columns)  # before any expensive work or any write
    scaler = pickle.loads(artifacts.scaler.read_bytes())
    if scaler.n_features_in_ != len(columns):
        raise BqxUserError(f"{artifacts.scaler} does not match the manifest: retrain")
    periods = load_periods(conn)
    model_sha = manifest.get("artifacts", {}).get("model_sha256", "unknown")
    extractor = load_keras().saving.load_model(artifacts.extractor, compile=False)

    started = time.perf_counter()
    with conn:
        ensure_parent(conn)
    months = month_starts(periods.train.start_utc, periods.test.end_utc)
    todo = [(pair, month) for pair in config.pairs for month in months]
    written: list[PartitionWrite] = []
    for done, (pair, month) in enumerate(todo, start=1):
        with conn:
            block = read_input(conn, columns, pair, month, next_month(month))
            if len(block):
                scaled = standardize(scaler, block.features)
                values = extractor.predict(scaled, batch_size=config.batch_size, verbose=0)
                write_partition(conn, block, month, np.asarray(values, dtype=np.float32))
                written.append(PartitionWrite(pair, month, leaf_table(pair, month), len(block)))
        if progress:
            progress("embedding", done, len(todo))
    with conn:
        emptied = empty_stale_leaves(conn, config.pairs, {w.table for w in written})
        for pair in config.pairs:
            _comment(conn, pair_table(pair), f"autoencoder sha256 {model_sha}")
    seconds = time.perf_counter() - started
    log.info(
        "embedded %d rows in %d partitions in %.1f s",
        sum(w.rows for w in written),
        len(written),
        seconds,
    )
    return EmbedResult(written, emptied, seconds, model_sha)


def ensure_parent(conn: psycopg2.extensions.connection) -> None:
    """Create the parent table if missing; refuse one with other columns."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} real not null").format(sql.Identifier(name)) for name in EMBEDDING_COLUMNS
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "create table if not exists {}.{} (pair text not null, ts_utc timestamptz "
                "not null, {}, primary key (pair, ts_utc)) partition by list (pair)"
            ).format(sql.Identifier(SCHEMA), sql.Identifier(TABLE), columns)
        )
        cur.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (SCHEMA, TABLE),
        )
        found = [name for (name,) in cur.fetchall()]
    if found != ["pair", "ts_utc", *EMBEDDING_COLUMNS]:
        raise BqxUserError(
            f"{SCHEMA}.{TABLE} exists with other columns ({len(found)}): drop it "
            f"(drop table {SCHEMA}.{TABLE} cascade) and run `bqx embed` again"
        )


def ensure_partition(conn: psycopg2.extensions.connection, pair: str, month: datetime) -> str:
    """Create the pair's table and the month's leaf if missing; return the leaf's name."""
    pair = validate_pair(pair)
    leaf = leaf_table(pair, month)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "create table if not exists {schema}.{pair_table} partition of {schema}.{parent} "
                "for values in ({pair}) partition by range (ts_utc)"
            ).format(
                schema=sql.Identifier(SCHEMA),
                pair_table=sql.Identifier(pair_table(pair)),
                parent=sql.Identifier(TABLE),
                pair=sql.Literal(pair),
            )
        )
        cur.execute(
            sql.SQL(
                "create table if not exists {schema}.{leaf} partition of {schema}.{pair_table} "
                "for values from ({start}) to ({end})"
            ).format(
                schema=sql.Identifier(SCHEMA),
                leaf=sql.Identifier(leaf),
                pair_table=sql.Identifier(pair_table(pair)),
                start=sql.Literal(month),
                end=sql.Literal(next_month(month)),
            )
        )
    return leaf


def write_partition(
    conn: psycopg2.extensions.connection,
    block: InputBlock,
    month: datetime,
    values: np.ndarray,
) -> None:
    """Replace one leaf's rows with `values` (caller's transaction: truncate + COPY)."""
    if values.shape != (len(block), EMBEDDING_DIM):
        raise ValueError(f"embeddings of shape {values.shape} for {len(block)} rows")
    if not np.isfinite(values).all():
        raise BqxUserError(f"the encoder produced NaN or inf for {block.pair} {month:%Y-%m}")
    leaf = sql.Identifier(ensure_partition(conn, block.pair, month))
    target = sql.SQL("{}.{} ({})").format(
        sql.Identifier(SCHEMA),
        leaf,
        sql.SQL(", ").join(map(sql.Identifier, ["pair", "ts_utc", *EMBEDDING_COLUMNS])),
    )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("truncate table {}.{}").format(sql.Identifier(SCHEMA), leaf))
        copy = sql.SQL("copy {} from stdin with (format binary)").format(target)
        cur.copy_expert(copy.as_string(conn), io.BytesIO(binary_copy(block, values)))


def binary_copy(block: InputBlock, values: np.ndarray) -> bytes:
    """PostgreSQL binary COPY of (pair text, ts_utc timestamptz, emb_* float4), via numpy.

    Every row has the same layout: a field count, then (length, value) for each field, all
    big-endian; timestamptz is microseconds since 2000-01-01 UTC.
    """
    fields = [
        ("count", ">i2"),
        ("pair_len", ">i4"),
        ("pair", "S6"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
    ]
    for name in EMBEDDING_COLUMNS:
        fields += [(f"{name}_len", ">i4"), (name, ">f4")]
    rows = np.zeros(len(block), dtype=np.dtype(fields))
    rows["count"] = 2 + EMBEDDING_DIM
    rows["pair_len"] = 6
    rows["pair"] = block.pair.encode()
    rows["ts_len"] = 8
    rows["ts"] = (block.ts_epoch - _PG_EPOCH_SECONDS) * 1_000_000
    for i, name in enumerate(EMBEDDING_COLUMNS):
        rows[f"{name}_len"] = 4
        rows[name] = values[:, i]
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    return header + rows.tobytes() + struct.pack(">h", -1)


def empty_stale_leaves(
    conn: psycopg2.extensions.connection, pairs: Sequence[str], written: set[str]
) -> list[str]:
    """Truncate leaves of these pairs that got no rows in this run (their input is gone)."""
    emptied = []
    with conn.cursor() as cur:
        for pair in pairs:
            cur.execute(
                "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                "where i.inhparent = to_regclass(%s)",
                (f"{SCHEMA}.{pair_table(pair)}",),
            )
            for (leaf,) in cur.fetchall():
                if leaf not in written:
                    cur.execute(
                        sql.SQL("truncate table {}.{}").format(
                            sql.Identifier(SCHEMA), sql.Identifier(leaf)
                        )
                    )
                    emptied.append(leaf)
    return emptied


def _comment(conn: psycopg2.extensions.connection, table: str, text: str) -> None:
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f"{SCHEMA}.{table}",))
        if cur.fetchone()[0] is None:
            return
        cur.execute(
            sql.SQL("comment on table {}.{} is {}").format(
                sql.Identifier(SCHEMA), sql.Identifier(table), sql.Literal(text)
            )
        )


def writer_of(conn: psycopg2.extensions.connection, pair: str) -> str | None:
    """The comment of a pair's embeddings table (which model wrote it), or None."""
    with conn.cursor() as cur:
        cur.execute(
            "select obj_description(to_regclass(%s), 'pg_class')", (f"{SCHEMA}.{pair_table(pair)}",)
        )
        return cur.fetchone()[0]
