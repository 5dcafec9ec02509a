"""Benchmark: ingest one real 2017 pair file (HistData bars converted to UTC, ~371k rows).

Prints rows/s of `bqx ingest` (parse, validate, COPY, one transaction) for the generic CSV and
for the same bars written back in HistData's own format (New York clock, zip), the time of a
re-ingest that adds nothing, and a reference measured in the same run: pandas.read_csv of
the same file, the floor any Python ingest pays before validating or loading a row.
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

from bench.common import bench_settings, machine, require_real_data
from bqx import db
from bqx.ingest.loader import ingest_file

PAIR = "EURUSD"


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


def timed(func) -> tuple[float, object]:
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def main() -> dict:
    data = require_real_data()
    source = data / f"{PAIR}.csv.gz"
    report: dict = {"machine": machine(), "pair": PAIR}
    report["read_csv_seconds"], bars = timed(lambda: pd.read_csv(source))
    report["rows"] = len(bars)
    settings = bench_settings("ingest")
    conn = db.connect(settings)
    report["generic_seconds"], first = timed(lambda: ingest_file(conn, source))
    report["reingest_seconds"], again = timed(lambda: ingest_file(conn, source))
    report["loaded"], report["reloaded"] = first.rows_loaded, again.rows_loaded
    with conn, conn.cursor() as cur:
        cur.execute("truncate raw.m1_bars, raw.m1_bars_rejected, raw.ingest_log")
    with tempfile.TemporaryDirectory() as tmp:
        histdata = write_histdata_zip(bars, Path(tmp))
        report["histdata_seconds"], hist = timed(lambda: ingest_file(conn, histdata))
    report["histdata_loaded"] = hist.rows_loaded
    conn.close()
    return report


def print_report(report: dict) -> None:
    rows = report["rows"]
    print(f"ingest, real {report['pair']} 2017 ({rows:,} bars) on {report['machine']}")
    for label, key in (("generic CSV (gz)", "generic"), ("HistData zip (NY clock)", "histdata")):
        seconds = report[f"{key}_seconds"]
        print(f"  {label:<24} {seconds:6.1f} s  {rows / seconds:>10,.0f} rows/s")
    print(
        f"  re-ingest of the same file: {report['reingest_seconds']:.1f} s, "
        f"{report['reloaded']} rows added"
    )
    ratio = report["generic_seconds"] / report["read_csv_seconds"]
    print(
        f"  reference pandas.read_csv of the file: {report['read_csv_seconds']:.2f} s "
        f"(ingest / read_csv = {ratio:.1f})"
    )
    assert report["loaded"] == report["histdata_loaded"] == rows, "not every bar loaded"


if __name__ == "__main__":
    print_report(main())
    sys.exit(0)
