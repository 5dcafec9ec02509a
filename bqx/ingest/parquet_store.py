"""Raw bars as parquet partitioned by pair and month: the input of the Spark target.

Layout under a root directory (Hive-style, what Spark's `partitioned by` reads):

    ROOT/m1_bars/pair=EURUSD/partition_month=2024-01-01/<name>.parquet
    ROOT/m1_bars_rejected/<file sha256>.parquet        (bqx ingest --to parquet)
    ROOT/lead_lag_relationships/part-0.parquet         (bqx export-parquet, after bqx granger)

Two writers share it: `ingest_file_to_parquet` parses and validates bar files exactly as
`bqx ingest` does (same quarantine reasons) without a database; `export_from_postgres` copies
raw.m1_bars (and the Granger links) of a PostgreSQL history, one (pair, month) at a time.
dbt registers the tables over ROOT on Spark (macros/sources/spark_sources.sql).
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg2.extensions
import pyarrow as pa
import pyarrow.parquet as pq

from bqx.config import BarRules
from bqx.errors import BqxUserError
from bqx.ingest.bar_files import DUPLICATE_CONFLICT, parse_file
from bqx.ingest.loader import IngestResult
from bqx.pairs import validate_pair

log = logging.getLogger(__name__)

PARTITION_COLUMN = "partition_month"  # first day of the UTC month; macros/sources/spark_sources.sql
VALUE_COLUMNS = ["open", "high", "low", "close", "volume"]
BAR_SCHEMA = pa.schema(
    [
        ("ts_utc", pa.timestamp("us", tz="UTC")),
        *((name, pa.float64()) for name in VALUE_COLUMNS),
        ("source", pa.string()),
    ]
)
LEAD_LAG_SCHEMA = pa.schema(
    [
        ("leader", pa.string()),
        ("follower", pa.string()),
        ("lag_minutes", pa.int32()),
        ("f_stat", pa.float64()),
        ("p_value", pa.float64()),
        ("p_adjusted", pa.float64()),
        ("effect_size", pa.float64()),
        ("train_start", pa.timestamp("us", tz="UTC")),
        ("train_end", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class ParquetStore:
    """The parquet root the Spark target reads (BQX_SPARK_RAW_PATH)."""

    root: Path

    @property
    def bars_dir(self) -> Path:
        return self.root / "m1_bars"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "m1_bars_rejected"

    @property
    def lead_lag_dir(self) -> Path:
        return self.root / "lead_lag_relationships"

    def partition_dir(self, pair: str, month: str) -> Path:
        return self.bars_dir / f"pair={validate_pair(pair)}" / f"{PARTITION_COLUMN}={month}"


@dataclass
class ExportResult:
    partitions: int = 0
    rows: int = 0
    lead_lag_rows: int | None = None  # None: no bqx.lead_lag_relationships in the database
    pairs: list[str] = field(default_factory=list)


def _arrow_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` as an arrow table of `schema`; instants as naive UTC values (the pandas 3 way)."""
    columns = []
    for field_ in schema:
        values = frame[field_.name]
        if pa.types.is_timestamp(field_.type):
            values = pd.to_datetime(values, utc=True).dt.tz_convert(None).to_numpy()
        columns.append(pa.array(values, type=field_.type, from_pandas=True))
    return pa.Table.from_arrays(columns, schema=schema)


def _month_of(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert("UTC").dt.strftime("%Y-%m-01")


def write_partition(store: ParquetStore, pair: str, month: str, bars: pd.DataFrame, name: str):
    """Write one (pair, month) file of bars (ts_utc, values, source), sorted by time."""
    target = store.partition_dir(pair, month)
    target.mkdir(parents=True, exist_ok=True)
    frame = bars.sort_values("ts_utc")[BAR_SCHEMA.names]
    pq.write_table(_arrow_table(frame, BAR_SCHEMA), target / f"{name}.parquet")


def read_partition(store: ParquetStore, pair: str, month: str) -> pd.DataFrame:
    """Bars already stored in a (pair, month) partition."""
    folder = store.partition_dir(pair, month)
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    if not files:
        return pd.DataFrame(columns=BAR_SCHEMA.names)
    return pd.concat([pq.read_table(f, schema=BAR_SCHEMA).to_pandas() for f in files])


def ingest_file_to_parquet(
    store: ParquetStore,
    path: Path,
    *,
    file_format: str = "auto",
    pair: str | None = None,
    tz: str | None = None,
    rules: BarRules | None = None,
) -> IngestResult:
    """Parse one bar file and write its good bars into the store, one file per (pair, month)
    named after the file's content hash. A bar already stored (by this file or another)
    counts as a duplicate when equal and is quarantined as duplicate_conflict when not, as in
    raw.m1_bars, so re-ingesting a file adds nothing."""
    parsed = parse_file(path, file_format=file_format, pair=pair, tz=tz, rules=rules)
    bars = parsed.bars.copy()
    bars["source"] = parsed.source
    rejected = [parsed.rejected]
    loaded = duplicates = 0
    for (bar_pair, month), group in bars.groupby(["pair", _month_of(bars["ts_utc"])]):
        stored = read_partition(store, bar_pair, month)
        merged = group.merge(stored, on="ts_utc", how="left", suffixes=("", "_stored"))
        seen = merged["source_stored"].notna().to_numpy()
        same = (
            merged[VALUE_COLUMNS].to_numpy()
            == merged[[f"{c}_stored" for c in VALUE_COLUMNS]].to_numpy()
        ).all(axis=1)
        conflicts = group[seen & ~same]
        if len(conflicts):
            rejected.append(
                conflicts.assign(reason=DUPLICATE_CONFLICT)[
                    ["pair", "line_no", "raw_line", "reason"]
                ]
            )
        fresh = group[~seen]
        duplicates += int((seen & same).sum())
        if len(fresh):
            write_partition(store, bar_pair, month, fresh, parsed.sha256)
            loaded += len(fresh)
    quarantine = pd.concat(rejected, ignore_index=True)
    if len(quarantine):
        store.rejected_dir.mkdir(parents=True, exist_ok=True)
        quarantine.assign(source=parsed.source, source_sha256=parsed.sha256).to_parquet(
            store.rejected_dir / f"{parsed.sha256}.parquet", index=False
        )
    result = IngestResult(
        source=parsed.source,
        file_format=parsed.file_format,
        pairs=sorted(bars["pair"].unique().tolist()),
        rows_read=parsed.rows_read,
        rows_loaded=loaded,
        rows_duplicate=parsed.duplicates_in_file + duplicates,
        rejected_by_reason=Counter(quarantine["reason"]),
    )
    log.info("%s → parquet: %s", result.source, result.counts())
    return result


def export_from_postgres(
    conn: psycopg2.extensions.connection, store: ParquetStore, pairs: tuple[str, ...] = ()
) -> ExportResult:
    """Copy raw.m1_bars (the given pairs, else all) into the store, replacing what it held for
    those pairs, one (pair, month) query at a time; and bqx.lead_lag_relationships when
    `bqx granger` has written it, so that Spark builds the same lead-lag slots."""
    result = ExportResult()
    with conn.cursor() as cur:
        cur.execute("select to_regclass('raw.m1_bars') is not null")
        if not cur.fetchone()[0]:
            raise BqxUserError("no raw.m1_bars in the database: run `bqx ingest` first")
        cur.execute(
            """
            select pair, to_char(date_trunc('month', ts_utc at time zone 'UTC'), 'YYYY-MM-DD')
            from raw.m1_bars
            where cardinality(%(pairs)s::text[]) = 0 or pair = any(%(pairs)s::text[])
            group by 1, 2
            order by 1, 2
            """,
            {"pairs": [validate_pair(p) for p in pairs]},
        )
        partitions = cur.fetchall()
    if not partitions:
        raise BqxUserError("raw.m1_bars holds no bars for these pairs: nothing to export")
    for pair in sorted({p for p, _ in partitions}):
        shutil.rmtree(store.bars_dir / f"pair={validate_pair(pair)}", ignore_errors=True)
    for pair, month in partitions:
        with conn.cursor() as cur:
            cur.execute(
                """
                select ts_utc, open, high, low, close, volume, source
                from raw.m1_bars
                where pair = %s and ts_utc >= %s::timestamptz
                    and ts_utc < %s::timestamptz + interval '1 month'
                """,
                (pair, f"{month} 00:00+00", f"{month} 00:00+00"),
            )
            frame = pd.DataFrame(cur.fetchall(), columns=BAR_SCHEMA.names)
        write_partition(store, pair, month, frame, "part-0")
        result.partitions += 1
        result.rows += len(frame)
    result.pairs = sorted({p for p, _ in partitions})
    result.lead_lag_rows = _export_lead_lag(conn, store)
    log.info("exported %d bars in %d partitions to %s", result.rows, result.partitions, store.root)
    return result


def _export_lead_lag(conn: psycopg2.extensions.connection, store: ParquetStore) -> int | None:
    with conn.cursor() as cur:
        cur.execute("select to_regclass('bqx.lead_lag_relationships') is not null")
        if not cur.fetchone()[0]:
            return None
        cur.execute(f"select {', '.join(LEAD_LAG_SCHEMA.names)} from bqx.lead_lag_relationships")
        frame = pd.DataFrame(cur.fetchall(), columns=LEAD_LAG_SCHEMA.names)
    shutil.rmtree(store.lead_lag_dir, ignore_errors=True)
    store.lead_lag_dir.mkdir(parents=True)
    pq.write_table(_arrow_table(frame, LEAD_LAG_SCHEMA), store.lead_lag_dir / "part-0.parquet")
    return len(frame)
