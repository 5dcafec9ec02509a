"""Load parsed bar files into raw.m1_bars with COPY, one transaction per file.

Re-ingesting a file adds nothing: bars already present with the same values are counted as
duplicates, bars present with other values are quarantined as conflicts, and quarantined
lines are keyed by (file content hash, line number).
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg2.extensions

from bqx.errors import BqxUserError
from bqx.ingest.bar_files import BAR_COLUMNS, DUPLICATE_CONFLICT, ParsedFile, parse_file
from bqx.sql import ensure_raw_schema

log = logging.getLogger(__name__)

BAR_SUFFIXES = (".csv", ".csv.gz", ".zip", ".txt")


@dataclass
class IngestResult:
    source: str
    file_format: str
    pairs: list[str]
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rejected_by_reason: Counter = field(default_factory=Counter)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


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


def _copy_frame(cur, frame: pd.DataFrame, table: str, columns: list[str]) -> None:
    buffer = io.StringIO()
    frame[columns].to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S+00")
    buffer.seek(0)
    cur.copy_expert(f"copy {table} ({', '.join(columns)}) from stdin with (format csv)", buffer)


def load_parsed(conn: psycopg2.extensions.connection, parsed: ParsedFile) -> IngestResult:
    """Load one parsed file inside the caller's transaction."""
    with conn.cursor() as cur:
        cur.execute(
            """
            create temp table incoming_bars (
                pair text, ts_utc timestamptz, open float8, high float8, low float8,
                close float8, volume float8, line_no integer, raw_line text
            ) on commit drop;
            create temp table incoming_rejected (
                pair text, line_no integer, raw_line text, reason text
            ) on commit drop;
            """
        )
        _copy_frame(cur, parsed.bars, "incoming_bars", [*BAR_COLUMNS, "line_no", "raw_line"])
        _copy_frame(
            cur, parsed.rejected, "incoming_rejected", ["pair", "line_no", "raw_line", "reason"]
        )
        # Bars that exist already with other values are conflicts, not silent overwrites.
        cur.execute(
            """
            insert into incoming_rejected (pair, line_no, raw_line, reason)
            select i.pair, i.line_no, i.raw_line, %(reason)s
            from incoming_bars as i
            join raw.m1_bars as b on b.pair = i.pair and b.ts_utc = i.ts_utc
            where (b.open, b.high, b.low, b.close, b.volume)
                is distinct from (i.open, i.high, i.low, i.close, i.volume)
            """,
            {"reason": DUPLICATE_CONFLICT},
        )
        conflicts = cur.rowcount
        cur.execute(
            """
            insert into raw.m1_bars (pair, ts_utc, open, high, low, close, volume, source)
            select pair, ts_utc, open, high, low, close, volume, %(source)s
            from incoming_bars
            on conflict (pair, ts_utc) do nothing
            """,
            {"source": parsed.source},
        )
        loaded = cur.rowcount
        cur.execute(
            """
            insert into raw.m1_bars_rejected
                (pair, source, source_sha256, line_no, raw_line, reason)
            select pair, %(source)s, %(sha)s, line_no, raw_line, reason
            from incoming_rejected
            on conflict (source_sha256, line_no) do nothing
            """,
            {"source": parsed.source, "sha": parsed.sha256},
        )
        cur.execute("select reason, count(*) from incoming_rejected group by reason")
        by_reason = Counter({reason: int(n) for reason, n in cur.fetchall()})
        duplicates = parsed.duplicates_in_file + len(parsed.bars) - loaded - conflicts
        result = IngestResult(
            source=parsed.source,
            file_format=parsed.file_format,
            pairs=sorted(parsed.bars["pair"].unique().tolist()),
            rows_read=parsed.rows_read,
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
                parsed.source,
                parsed.sha256,
                parsed.file_format,
                result.rows_read,
                result.rows_loaded,
                result.rows_duplicate,
                result.rows_rejected,
            ),
        )
    return result


def ingest_file(
    conn: psycopg2.extensions.connection,
    path: Path,
    *,
    file_format: str = "auto",
    pair: str | None = None,
    tz: str | None = None,
) -> IngestResult:
    """Parse and load one file in its own transaction: all of it lands, or none of it."""
    parsed = parse_file(path, file_format=file_format, pair=pair, tz=tz)
    with conn:  # commit on success, roll back the whole file on any error or interrupt
        ensure_raw_schema(conn)
        result = load_parsed(conn, parsed)
    log.info(
        "%s: read %d, loaded %d, duplicates %d, rejected %d",
        result.source,
        result.rows_read,
        result.rows_loaded,
        result.rows_duplicate,
        result.rows_rejected,
    )
    return result


def ingest_files(
    conn: psycopg2.extensions.connection, paths: Iterable[Path], **options
) -> list[IngestResult]:
    """Ingest each file (directories expanded); an error leaves earlier files loaded."""
    return [ingest_file(conn, path, **options) for path in expand_paths(paths)]
