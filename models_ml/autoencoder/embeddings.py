"""`bqx embed`: the trained encoder applied to every input row → bqx.autoencoder_embeddings.

The table is partitioned like the dbt feature tables, so later stages join it partition by
partition: parent `bqx.autoencoder_embeddings` by LIST(pair) → `autoencoder_embeddings_eurusd`
by RANGE(ts_utc) → monthly leaves `autoencoder_embeddings_eurusd_2024_01`; primary key
(pair, ts_utc); columns emb_00 … emb_63 real (the float64 encoder output, cast to float32).

The encoder runs as a float64 numpy forward pass of the saved model (Encoder, via
models_ml/common/forward.py), not TensorFlow's predict: a row's embedding then depends on that
row alone, so `bqx online serve`, which embeds each new minute's 1-28 rows (embed_since),
writes bitwise what this batch run writes for the same rows in month blocks (issue 15).

Before any work the database's input columns are compared with the manifest's list, in order:
a model never meets another feature matrix silently. Each (pair, month) is one transaction:
read the input, scale, encode, TRUNCATE the leaf and COPY the new rows (binary COPY, so the
float32 values are stored bit for bit: models_ml/common/partitioned_store.py). A re-run therefore
gives the same rows, never duplicates, and an interrupted run leaves every leaf either old or
new. Leaves of the embedded pairs that received no rows this time (data removed since) are
emptied. Each pair's table carries the model's sha256 in its comment, so readers can tell
which model wrote it.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import (
    SCHEMA,
    InputBlock,
    InputColumn,
    ProgressCallback,
    input_columns,
    month_starts,
    next_month,
    read_input,
)
from bqx.pairs import PAIRS, validate_pair
from bqx.periods import load_periods
from models_ml.autoencoder.manifest import (
    EMBEDDING_DIM,
    AutoencoderArtifacts,
    check_features,
    load_manifest,
)
from models_ml.common.forward import ForwardPass
from models_ml.common.keras import load_keras
from models_ml.common.partitioned_store import PartitionedTable, ValueColumn
from models_ml.common.preprocessing import standardize

log = logging.getLogger(__name__)

TABLE = "autoencoder_embeddings"
EMBEDDING_COLUMNS = tuple(f"emb_{i:02d}" for i in range(EMBEDDING_DIM))
EMBEDDINGS = PartitionedTable(TABLE, tuple(map(ValueColumn, EMBEDDING_COLUMNS)), "bqx embed")


@dataclass(frozen=True)
class EmbedConfig:
    pairs: tuple[str, ...] = PAIRS

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
    return EMBEDDINGS.pair_table(pair)


def ensure_partition(conn: psycopg2.extensions.connection, pair: str, month: datetime) -> str:
    """Create the pair's table and the month's leaf if missing; return the leaf's name."""
    return EMBEDDINGS.ensure_partition(conn, pair, month)


@dataclass(frozen=True)
class Encoder:
    """The trained encoder ready to apply: the input columns (checked against the manifest),
    the train-period scaler and the float64 forward pass (models_ml/common/forward.py)."""

    columns: list[InputColumn]
    scaler: Any
    forward: ForwardPass
    model_sha256: str

    @classmethod
    def load(cls, conn: psycopg2.extensions.connection, settings: Settings) -> Encoder:
        """The artifacts of `bqx train autoencoder`; BqxUserError when there are none or they
        were trained on other input columns."""
        artifacts = AutoencoderArtifacts.of(settings)
        manifest = load_manifest(artifacts)
        columns = input_columns(conn)
        check_features(manifest, columns)  # before any expensive work or any write
        scaler = pickle.loads(artifacts.scaler.read_bytes())
        if scaler.n_features_in_ != len(columns):
            raise BqxUserError(f"{artifacts.scaler} does not match the manifest: retrain")
        extractor = load_keras().saving.load_model(artifacts.extractor, compile=False)
        model_sha = manifest.get("artifacts", {}).get("model_sha256", "unknown")
        return cls(columns, scaler, ForwardPass.of(extractor), model_sha)

    def encode(self, features: np.ndarray) -> np.ndarray:
        """The float32 embeddings of raw input rows (n, width): scaled, then encoded; each
        row's values depend on that row alone."""
        values = np.asarray(self.forward(standardize(self.scaler, features)), dtype=np.float32)
        if values.shape != (len(features), EMBEDDING_DIM):
            raise ValueError(f"embeddings of shape {values.shape} for {len(features)} rows")
        return values


def embed(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: EmbedConfig,
    progress: ProgressCallback | None = None,
) -> EmbedResult:
    """Encode every (pair, month) of the data and write it; see the module docstring."""
    encoder = Encoder.load(conn, settings)
    columns = encoder.columns
    periods = load_periods(conn)
    model_sha = encoder.model_sha256

    started = time.perf_counter()
    with conn:
        EMBEDDINGS.ensure_parent(conn)
    months = month_starts(periods.train.start_utc, periods.test.end_utc)
    todo = [(pair, month) for pair in config.pairs for month in months]
    written: list[PartitionWrite] = []
    for done, (pair, month) in enumerate(todo, start=1):
        with conn:
            block = read_input(conn, columns, pair, month, next_month(month))
            if len(block):
                values = encoder.encode(block.features)
                leaf = EMBEDDINGS.replace_leaf(conn, pair, month, block.ts_epoch, list(values.T))
                written.append(PartitionWrite(pair, month, leaf, len(block)))
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


def embed_since(
    conn: psycopg2.extensions.connection,
    encoder: Encoder,
    start: datetime,
    blocks: dict[str, InputBlock],
) -> dict[str, np.ndarray]:
    """The live tail: every pair's embeddings from `start` on replaced by the encoder's output
    for `blocks`, the input rows there now (read_since; caller's transaction; new months'
    leaves created). Returns each pair's embeddings, as stored."""
    values = {pair: encoder.encode(block.features) for pair, block in blocks.items()}
    rows = {pair: (blocks[pair].ts_epoch, list(v.T)) for pair, v in values.items()}
    EMBEDDINGS.replace_from(conn, start, rows)
    return values


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
