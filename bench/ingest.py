"""Benchmark: `bqx ingest` of real 2017 pair files against a bare COPY of the same rows.

Prints rows/s of `bqx ingest` (read, parse, validate, COPY, one transaction per file) for one
pair file (~371k bars) as generic CSV (gz) and as the same bars in HistData's own format (New
York clock, zip), the time of a re-ingest that adds nothing, the time for all 28 files, and
the reference measured in the same run: a bare `COPY ... FROM STDIN (FORMAT csv)` of each
file's rows, streamed from its gzip, into an unindexed table, the floor for getting these rows
into PostgreSQL at all. One-file figures are the better of two runs (the machine is shared).
Goals (issue 17): one file >= 250,000 rows/s, 28 files <= 60 s, ingest / COPY <= 3.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.common import bench_settings, machine, require_real_data
from bqx import db
from bqx.ingest.loader import ingest_file, ingest_files
from bqx.pairs import PAIRS
from bqx.sql import ensure_raw_schema

PAIR = "EURUSD"
BARE_TABLE = "bench_bare_bars"


def write_histdata_zip(bars: pd.DataFrame, out: Path) -> Path:
    """The same bars in HistData's ASCII M1 format (YYYYMMDD HHMMSS;o;h;l;c;v, New York)."""
    local = pd.to_datetime(bars["ts_utc"], utc=True).dt.tz_convert("America/New_York")
    lines = (
        local.dt.strftime("%Y%m%d %H%M%S")
        + ";"
        + bars[["open", "high", "low", "close", "volume"]].astype(str).agg(";".join, axis=1)
    )
    path = out / f"HISTDATA_COM_ASCII_{PAIR}_M12017.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"DAT_ASCII_{PAIR}_M1_2017.csv", "\n".join(lines) + "\n")
    return path


def timed(func: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def best_of_two(func: Callable[[], object], reset: Callable[[], None]) -> tuple[float, object]:
    runs = []
    for _ in range(2):
        reset()
        runs.append(timed(func))
    return min(runs, key=lambda run: run[0])


def bare_copy(conn, files: list[Path]) -> int:
    """COPY the files' CSV rows as they are into an unindexed table; returns rows copied."""
    rows = 0
    with conn, conn.cursor() as cur:
        for path in files:
            with gzip.open(path, "rb") as stream:
                cur.copy_expert(
                    f"copy {BARE_TABLE} from stdin with (format csv, header)", stream, 1 << 20
                )
            rows += cur.rowcount
    return rows


def main() -> dict:
    data = require_real_data()
    source = data / f"{PAIR}.csv.gz"
    files = [data / f"{pair}.csv.gz" for pair in PAIRS]
    report: dict = {"machine": machine(), "pair": PAIR, "load_start": os.getloadavg()[0]}
    bars = pd.read_csv(source)
    report["rows"] = len(bars)
    conn = db.connect(bench_settings("ingest"))
    with conn, conn.cursor() as cur:
        ensure_raw_schema(conn)
        cur.execute(
            f"create table if not exists {BARE_TABLE} (ts_utc timestamptz, "
            "open float8, high float8, low float8, close float8, volume float8)"
        )

    def empty() -> None:
        with conn, conn.cursor() as cur:
            cur.execute(f"truncate raw.m1_bars, raw.m1_bars_rejected, raw.ingest_log, {BARE_TABLE}")

    report["copy_seconds"], report["copy_rows"] = best_of_two(
        lambda: bare_copy(conn, [source]), empty
    )
    report["generic_seconds"], first = best_of_two(lambda: ingest_file(conn, source), empty)
    report["reingest_seconds"], again = timed(lambda: ingest_file(conn, source))
    report["loaded"], report["reloaded"] = first.rows_loaded, again.rows_loaded
    with tempfile.TemporaryDirectory() as tmp:
        histdata = write_histdata_zip(bars, Path(tmp))
        report["histdata_seconds"], hist = best_of_two(lambda: ingest_file(conn, histdata), empty)
    report["histdata_loaded"] = hist.rows_loaded
    empty()
    report["all_copy_seconds"], report["all_copy_rows"] = timed(lambda: bare_copy(conn, files))
    empty()
    report["all_seconds"], results = timed(lambda: ingest_files(conn, files))
    report["all_loaded"] = sum(r.rows_loaded for r in results)
    report["all_rejected"] = sum(r.rows_rejected for r in results)
    report["files"] = len(files)
    report["load_end"] = os.getloadavg()[0]
    empty()
    conn.close()
    return report


def print_report(report: dict) -> None:
    rows, copy = report["rows"], report["copy_seconds"]
    start, end = report["load_start"], report["load_end"]
    print(f"ingest, real {report['pair']} 2017 ({rows:,} bars) on {report['machine']}")
    print(f"  1-minute load average {start:.1f} at start, {end:.1f} at end")
    label = "bare COPY of its CSV rows, unindexed table"
    print(f"  {label:<43} {copy:5.2f} s {rows / copy:>9,.0f} rows/s")
    for label, key in (("generic CSV (gz)", "generic"), ("HistData zip (NY clock)", "histdata")):
        seconds = report[f"{key}_seconds"]
        print(
            f"  {'bqx ingest, ' + label:<43} {seconds:5.2f} s {rows / seconds:>9,.0f} rows/s"
            f"  ingest / COPY = {seconds / copy:.2f}"
        )
    print(
        f"  re-ingest of the same file: {report['reingest_seconds']:.2f} s, "
        f"{report['reloaded']} rows added"
    )
    total, seconds = report["all_loaded"], report["all_seconds"]
    copy_all = report["all_copy_seconds"]
    print(
        f"  all {report['files']} files: bqx ingest {seconds:.1f} s ({total:,} bars, "
        f"{total / seconds:,.0f} rows/s, {report['all_rejected']} rejected); bare COPY "
        f"{copy_all:.1f} s; ingest / COPY = {seconds / copy_all:.2f}"
    )
    assert report["loaded"] == report["histdata_loaded"] == rows == report["copy_rows"], "rows lost"
    assert total == report["all_copy_rows"], "not every bar of the 28 files loaded"


if __name__ == "__main__":
    print_report(main())
    sys.exit(0)
