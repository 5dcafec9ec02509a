"""One-off measurement (not part of `make bench`, it takes the better part of an hour):
ingest the whole real 2017 panel (28 pairs, ~10.4 M bars) and build the base and cross-pair
feature layers with their data tests (`dbt build`, as `bqx build` runs them).

Run it with `python -m bench.run_all full_year`. Prints ingest and build times, rows/s, the
slowest models and peak memory. The database stays in .bqx/bench/full_year for later stages,
and a later run reuses its bars (the ingest is reported as reused) and measures the build alone:
`BQX_BENCH_FRESH=1` starts from an empty database instead.
"""

from __future__ import annotations

import os
import subprocess
import time

from bench import common
from bqx import db
from bqx.dbt_runner import dbt_command, dbt_env
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS

# base layer, split and cross-pair layer (issue 17 measures these together)
BUILD_SELECTION = "+ml_feature_matrix ml_periods +ml_cross_pair_features"
THREADS = 2  # profiles.yml's postgres output: the idle thread-seconds are counted against it


def loaded_pairs(conn) -> set[str]:
    """Pairs with bars in raw.m1_bars (an empty set before the first ingest)."""
    with conn, conn.cursor() as cur:
        cur.execute("select to_regclass('raw.m1_bars') is not null")
        if not cur.fetchone()[0]:
            return set()
        cur.execute("select distinct pair from raw.m1_bars")
        return {row[0] for row in cur.fetchall()}


def main() -> dict:
    data = common.require_real_data()
    settings = common.bench_settings("full_year", fresh=os.environ.get("BQX_BENCH_FRESH") == "1")
    report: dict = {"machine": common.machine(), "pairs": len(PAIRS)}
    conn = db.connect(settings)
    report["ingest_reused"] = loaded_pairs(conn) == set(PAIRS)
    if report["ingest_reused"]:
        with conn.cursor() as cur:
            cur.execute("select count(*) from raw.m1_bars")
            report["bars"] = cur.fetchone()[0]
    else:
        started = time.perf_counter()
        results = ingest_files(conn, [data / f"{pair}.csv.gz" for pair in PAIRS])
        report["ingest_seconds"] = time.perf_counter() - started
        report["bars"] = sum(r.rows_loaded for r in results)
    env = dbt_env(settings)
    subprocess.run(dbt_command(settings, ["seed"]), env=env, check=True, capture_output=True)
    report["load_at_start"] = os.getloadavg()[0]
    with common.peak_memory(report, db.postmaster_pid(settings)):
        started = time.perf_counter()
        run = subprocess.run(
            dbt_command(
                settings, ["build", "--select", BUILD_SELECTION, "--exclude", "resource_type:seed"]
            ),
            env=env,
            capture_output=True,
            text=True,
        )
        report["build_seconds"] = time.perf_counter() - started
    report["load_at_end"] = os.getloadavg()[0]
    if run.returncode != 0:
        raise SystemExit(f"dbt run failed:\n{run.stdout[-4000:]}")
    report["model_seconds"] = common.dbt_node_seconds(settings, kind="model")
    report["model_spans"] = common.dbt_node_timeline(settings, kind="model")
    report["busy_seconds"] = sum(common.dbt_node_seconds(settings).values())
    report["test_seconds"] = sum(common.dbt_node_seconds(settings, kind="test").values())
    with conn.cursor() as cur:
        cur.execute("select count(*) from bqx.int_m1_series")
        report["grid_rows"] = cur.fetchone()[0]
    conn.close()
    return report


def print_report(report: dict) -> None:
    print(f"full year, real 2017, {report['pairs']} pairs on {report['machine']}")
    if report["ingest_reused"]:
        print(f"  {report['bars']:,} bars already in the database (ingest not repeated)")
    else:
        print(
            f"  ingest {report['bars']:,} bars: {report['ingest_seconds']:.0f} s "
            f"({report['bars'] / report['ingest_seconds']:,.0f} rows/s)"
        )
    print(
        f"  base + cross-pair build with tests: {report['build_seconds']:.0f} s for "
        f"{report['grid_rows']:,} grid rows "
        f"({report['grid_rows'] / report['build_seconds']:,.0f} rows/s)"
    )
    spans = report.get("model_spans", {})
    for model, seconds in sorted(report["model_seconds"].items(), key=lambda kv: -kv[1]):
        start, end = spans.get(model, (float("nan"), float("nan")))
        print(f"    {model:<30} {seconds:7.0f} s   ran {start:5.0f} → {end:5.0f} s")
    print(f"    {'(data tests, summed)':<30} {report['test_seconds']:7.0f} s")
    if "busy_seconds" in report:
        idle = THREADS * report["build_seconds"] - report["busy_seconds"]
        print(f"  nodes busy {report['busy_seconds']:.0f} s; idle thread-seconds {idle:.0f} s")
    print(f"  peak memory (PSS of PostgreSQL + dbt): {report['peak_pss_gib']:.2f} GiB")
    print(
        f"  1-minute load average {report['load_at_start']:.1f} at the build's start, "
        f"{report['load_at_end']:.1f} at its end"
    )


if __name__ == "__main__":
    print_report(main())
