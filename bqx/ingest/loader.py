"""Load bar files into raw.m1_bars, one transaction per file, at close to COPY speed.

Re-ingesting a file adds nothing: bars already present with the same values are counted as
duplicates, bars present with other values are quarantined as conflicts, and quarantined
lines are keyed by (file content hash, line number).

How, and why (one real 2017 pair file, 371,635 bars, this 2-core machine; bench/ingest.py):
- The file streams in 2 MiB chunks (bar_files.py), each parsed and validated vectorised
  (bar_rows.py), its good bars sent as binary COPY (copy_binary.py) and its rejected lines
  as CSV into a temp table: memory is a few chunks whatever the file size.
- Direct first: the chunks' good bars are copied straight into raw.m1_bars, inside a
  savepoint. That is the whole job when the file's minutes are new and unique, the common
  case. Measured on the same rows at load 1.5: binary COPY into raw.m1_bars 0.54 s, against
  0.17 s into an unindexed temp table followed by the set-based `insert ... select ... on
  conflict do nothing` into raw.m1_bars, 1.24 s (the primary key is maintained either way,
  and COPY inserts in batches). A bare text COPY of the file into an unindexed table: 0.36 s.
- Staged when that fails: a minute already in the table or repeated in the file raises a
  unique violation on the first chunk that holds it; the savepoint is rolled back and the file
  is read again into an unindexed temp table (binary COPY), from which set-based statements
  keep the first line of each minute, quarantine repeats and database bars with other values
  as duplicate_conflict, and insert the rest. Their raw text is fetched from the file by line
  number (conflicts are rare; the staging table carries no text). A re-ingest pays one
  wasted chunk.
- Parsing overlaps the COPY: the next chunk is parsed in a worker thread (pyarrow, numpy and
  zlib mostly run without the GIL) while the current one is copied. This process spends
  0.33 s of CPU per pair file; the rest of the wall time is PostgreSQL's.
Measured by bench/ingest.py (bench/history.md, 2026-11-30, 1-minute load 1.8-2.5; a bare
COPY of the file's CSV into an unindexed table 0.37 s): generic CSV 0.82 s (450,000 rows/s,
2.22× the bare COPY), HistData zip 0.93 s (401,000 rows/s, 2.50×), all 28 files 21.2 s
(489,000 rows/s, 1.40× their bare COPY, 15.2 s). At load 5 every time about doubles, the
ratios hold (225,000 rows/s, 2.06×; 28 files 45.4 s). Before: 65,000 rows/s for one pair
file, 20.7× a bare COPY, the Python validation the cost.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2.errors
import psycopg2.extensions

from bqx.config import BarRules
from bqx.errors import BqxUserError
from bqx.ingest import copy_binary, staging
from bqx.ingest.bar_files import BarFile, open_bar_file
from bqx.ingest.bar_rows import REJECTED_COLUMNS, ParsedChunk
from bqx.sql import ensure_raw_schema

log = logging.getLogger(__name__)

BAR_SUFFIXES = (".csv", ".csv.gz", ".zip", ".txt")
VALUE_COLUMNS = ["open", "high", "low", "close", "volume"]
DIRECT_TABLE = "raw.m1_bars"


@dataclass
class IngestResult:
    source: str
    file_format: str
    pairs: list[str]
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rejected_by_reason: Counter = field(default_factory=Counter)

    def counts(self) -> str:
        """The counts of a log line: read, loaded, duplicates, rejected."""
        return (
            f"read {self.rows_read}, loaded {self.rows_loaded}, "
            f"duplicates {self.rows_duplicate}, rejected {self.rows_rejected}"
        )

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


@dataclass
class _Tally:
    """What the chunks of one pass held."""

    rows_read: int = 0
    good: int = 0
    pairs: set[str] = field(default_factory=set)
    ordered: bool = True  # one pair, strictly increasing minutes: no minute twice
    previous_us: int | None = None  # the last good bar's minute
    first_us: int | None = None  # the earliest good bar's minute
    last_us: int | None = None  # the latest good bar's minute

    def add(self, parsed: ParsedChunk) -> None:
        bars = parsed.bars
        self.rows_read += parsed.rows_read
        self.good += len(bars)
        self.pairs.update(pd.unique(bars.pair).tolist())
        if not len(bars):
            return
        utc_us = bars.utc_us
        if self.ordered:
            after = self.previous_us is None or utc_us[0] > self.previous_us
            increasing = bool((np.diff(utc_us) > 0).all())
            self.ordered = len(self.pairs) == 1 and after and increasing
            self.previous_us = int(utc_us[-1])
        low, high = int(utc_us.min()), int(utc_us.max())
        self.first_us = low if self.first_us is None else min(self.first_us, low)
        self.last_us = high if self.last_us is None else max(self.last_us, high)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, directories expanded to the bar files they hold (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(BAR_SUFFIXES)
            )
            if not found:
                raise BqxUserError(f"{path} holds no bar files (*.csv, *.csv.gz, *.zip)")
            files.extend(found)
        elif not path.exists():
            raise BqxUserError(f"no such file: {path}")
        else:
            files.append(path)
    return files


@dataclass
class _Payload:
    """A parsed chunk and its COPY payloads."""

    parsed: ParsedChunk
    columns: list[str]
    bars: bytes | None
    rejected: bytes | None


def _payload(parsed: ParsedChunk, table: str, source: bytes) -> _Payload:
    """Good bars for raw.m1_bars (with their source) or the staging table (with their line
    numbers) as binary COPY, rejected lines as CSV for the rejected staging table."""
    bars = parsed.bars
    codes, pairs = pd.factorize(bars.pair)
    fields = [
        np.array([p.encode() for p in pairs], dtype="S6")[codes],
        copy_binary.timestamptz(bars.utc_us),
        *bars.prices.T,
        bars.volume,
    ]
    columns = ["pair", "ts_utc", *VALUE_COLUMNS]
    if table == DIRECT_TABLE:
        fields, columns = [*fields, source], [*columns, "source"]
    else:
        fields, columns = [*fields, bars.line_no.astype(np.int32)], [*columns, "line_no"]
    rejected = parsed.rejected[REJECTED_COLUMNS]
    return _Payload(
        parsed,
        columns,
        copy_binary.encode(len(bars), fields) if len(bars) else None,
        rejected.to_csv(index=False, header=False).encode() if len(rejected) else None,
    )


def _prefetched(items: Iterator[_Payload]) -> Iterator[_Payload]:
    """The items, each next one computed in a worker thread while the caller uses the
    current one: parsing (pyarrow, numpy, zlib; mostly without the GIL) overlaps the COPY."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bqx-ingest") as pool:
        ahead = pool.submit(next, items, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, items, None)
            yield item


def _copy_file(cur: psycopg2.extensions.cursor, bar_file: BarFile, table: str) -> _Tally:
    """Parse the file chunk by chunk and copy each chunk's rows."""
    tally = _Tally()
    source = bar_file.source.encode()
    payloads = (_payload(parsed, table, source) for parsed in bar_file.parsed_chunks())
    for payload in _prefetched(payloads):
        tally.add(payload.parsed)
        if payload.bars is not None:
            copy_binary.copy_rows(cur, table, payload.columns, payload.bars, binary=True)
        if payload.rejected is not None:
            copy_binary.copy_rows(
                cur, staging.REJECTED_TABLE, REJECTED_COLUMNS, payload.rejected, binary=False
            )
    return tally


def _merge(cur: psycopg2.extensions.cursor, bar_file: BarFile, tally: _Tally) -> tuple[int, int]:
    """The staged path's set-based merge (staging.py); returns (loaded, duplicates)."""
    if tally.first_us is None or tally.last_us is None:  # no good bar: nothing to merge
        return 0, 0
    span = staging.Span(sorted(tally.pairs), tally.first_us, tally.last_us, tally.ordered)
    merged = staging.merge_staged(cur, bar_file.source, span)
    staging.fill_conflict_lines(cur, bar_file)
    return merged


def load_bar_file(conn: psycopg2.extensions.connection, bar_file: BarFile) -> IngestResult:
    """Load one opened bar file inside the caller's transaction."""
    with conn.cursor() as cur:
        staging.create_staging_tables(cur)
        cur.execute("savepoint direct_copy")
        try:
            tally = _copy_file(cur, bar_file, DIRECT_TABLE)
            loaded, duplicates = tally.good, 0
            cur.execute("release savepoint direct_copy")
        except psycopg2.errors.UniqueViolation:
            log.debug("%s: minutes already loaded or repeated, staging it", bar_file.source)
            cur.execute("rollback to savepoint direct_copy")
            tally = _copy_file(cur, bar_file, staging.STAGING_TABLE)
            loaded, duplicates = _merge(cur, bar_file, tally)
        bar_file.check_unchanged()
        by_reason = quarantine_staged(cur, bar_file.source, bar_file.sha256)
        result = IngestResult(
            source=bar_file.source,
            file_format=bar_file.layout.file_format,
            pairs=sorted(tally.pairs),
            rows_read=tally.rows_read,
            rows_loaded=loaded,
            rows_duplicate=duplicates,
            rejected_by_reason=by_reason,
        )
        cur.execute(
            """
            insert into raw.ingest_log (source, source_sha256, file_format, rows_read,
                rows_loaded, rows_duplicate, rows_rejected)
            values (%s, %s, %s, %s, %s, %s, %s)
            """,
            (
                bar_file.source,
                bar_file.sha256,
                result.file_format,
                result.rows_read,
                result.rows_loaded,
                result.rows_duplicate,
                result.rows_rejected,
            ),
        )
    return result


def quarantine_staged(cur: psycopg2.extensions.cursor, source: str, sha256: str) -> Counter:
    """The one write path of raw.m1_bars_rejected: the lines staged in the transaction's
    rejected table (create_staging_tables), once per file content and line. Returns the staged
    lines by reason."""
    cur.execute(
        f"""
        insert into raw.m1_bars_rejected
            (pair, source, source_sha256, line_no, raw_line, reason)
        select pair, %(source)s, %(sha)s, line_no, raw_line, reason
        from {staging.REJECTED_TABLE}
        on conflict (source_sha256, line_no) do nothing
        """,
        {"source": source, "sha": sha256},
    )
    cur.execute(f"select reason, count(*) from {staging.REJECTED_TABLE} group by reason")
    return Counter({reason: int(n) for reason, n in cur.fetchall()})


def quarantine_lines(
    cur: psycopg2.extensions.cursor, source: str, sha256: str, rejected: pd.DataFrame
) -> Counter:
    """Quarantine a file's refused lines (REJECTED_COLUMNS) parsed elsewhere (`bqx feed`)
    through the same staging step as ingest."""
    staging.create_staging_tables(cur, if_not_exists=True)
    cur.execute(f"truncate {staging.REJECTED_TABLE}")
    if len(rejected):
        payload = rejected[REJECTED_COLUMNS].to_csv(index=False, header=False).encode()
        copy_binary.copy_rows(cur, staging.REJECTED_TABLE, REJECTED_COLUMNS, payload, binary=False)
    return quarantine_staged(cur, source, sha256)


def ingest_file(
    conn: psycopg2.extensions.connection,
    path: Path,
    *,
    file_format: str = "auto",
    pair: str | None = None,
    tz: str | None = None,
    rules: BarRules | None = None,
) -> IngestResult:
    """Parse and load one file in its own transaction: all of it lands, or none of it.
    `rules`: the door (default BarRules())."""
    bar_file = open_bar_file(path, file_format=file_format, pair=pair, tz=tz, rules=rules)
    with conn:  # commit on success, roll back the whole file on any error or interrupt
        ensure_raw_schema(conn)
        result = load_bar_file(conn, bar_file)
    log.info("%s: %s", result.source, result.counts())
    return result


def ingest_files(
    conn: psycopg2.extensions.connection, paths: Iterable[Path], **options
) -> list[IngestResult]:
    """Ingest each file (directories expanded); an error leaves earlier files loaded."""
    return [ingest_file(conn, path, **options) for path in expand_paths(paths)]
