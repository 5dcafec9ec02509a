"""Benchmark: `bqx granger` for all 28 pairs on one real 2017 month.

Builds the base layer for the month (ingest, then dbt up to bqx_values and ml_periods), runs
`bqx granger` (336 ordered sister pairs × 15 lags, 2 workers) as a user would and prints its
wall time, tests/s and peak memory, then the same step in process on one worker, split into
reading and testing. Reference measured in the same run: one ordered pair through statsmodels'
grangercausalitytests on the same number of rows, against this pipeline's time for that pair.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from statsmodels.tsa.stattools import grangercausalitytests
from threadpoolctl import threadpool_limits

from bench import common
from bench.features import run_dbt_timed
from bqx import db
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS
from bqx.periods import load_periods
from models_ml.granger.discovery import GrangerConfig, discover, load_changes
from models_ml.granger.report import check_known_links
from models_ml.granger.stats import lag_design, ordered_pair_tests, standardise

MONTH = "2017-03"
REFERENCE_PAIR = ("GBPUSD", "EURUSD")  # leader, follower


def build_base_layer(settings) -> dict:
    """Ingest the month and build bqx_values and ml_periods; returns bars and seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        bars = common.write_month_slices(list(PAIRS), MONTH, Path(tmp))
        conn = db.connect(settings)
        ingest_files(conn, [Path(tmp)])
        conn.close()
    run_dbt_timed(settings, ["seed"])
    seconds = run_dbt_timed(
        settings,
        ["run", "--select", "+bqx_values ml_periods", "--exclude", "resource_type:seed"],
    )
    return {"bars": bars, "build_seconds": seconds}


def time_cli(settings, report: dict) -> None:
    """`bqx granger` as a user runs it (2 worker processes, reports written), end to end."""
    env = {**os.environ, "BQX_HOME": str(settings.home), "BQX_DATABASE_URL": settings.database_url}
    command = [sys.executable, "-m", "bqx.cli", "granger", "--workers", "2"]
    with common.peak_memory(report, db.postmaster_pid(settings)):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=common.REPO, check=True, capture_output=True)
        report["cli_seconds"] = time.perf_counter() - started


def time_in_process(conn, config: GrangerConfig, report: dict) -> None:
    """The same step in this process on one worker, split into reading and testing."""
    marks: dict[str, float] = {}

    def on_step(stage: str, done: int, total: int) -> None:
        if done == total:
            marks[stage] = time.perf_counter()

    started = time.perf_counter()
    result = discover(conn, config, on_step)
    report["in_process_seconds"] = time.perf_counter() - started
    report["read_seconds"] = marks["reading"] - started
    report["test_seconds"] = marks["testing"] - marks["reading"]
    report["ordered_pairs"] = len(result.best)
    report["tests"] = len(result.tests)
    report["significant"] = len(result.relationships)
    report["skipped"] = len(result.skipped)
    report["n_obs_median"] = int(result.best["n_obs"].median())
    report["strongest"] = [
        f"{row.leader}→{row.follower} {row.lag_minutes} min (effect {row.effect_size:.4f})"
        for row in result.relationships.nlargest(5, "effect_size").itertuples()
    ]
    report["known_links"] = [
        f"{check.link.leader}→{check.link.follower} ({check.link.claimed}): {check.verdict}"
        + (f", best lag {int(check.best['lag_minutes'])}" if check.best is not None else "")
        for check in check_known_links(result)
    ]


def time_reference(conn, config: GrangerConfig, report: dict) -> None:
    """One ordered pair: this pipeline's tests against grangercausalitytests, same row count,
    both on one BLAS thread as in a pool worker (one core each)."""
    train = load_periods(conn).train
    leader, follower = (
        standardise(load_changes(conn, pair, train), config.vol_window) for pair in REFERENCE_PAIR
    )
    design = lag_design(follower, leader, config.max_lag, config.max_rows)
    # statsmodels takes two plain series and lags them by row; give it as many rows
    series = np.column_stack([design[:, -1], design[:, config.max_lag]])
    best = float("inf")
    with threadpool_limits(1):
        for _ in range(3):
            started = time.perf_counter()
            ordered_pair_tests(leader, follower, config.max_lag, config.max_rows)
            best = min(best, time.perf_counter() - started)
        started = time.perf_counter()
        grangercausalitytests(series, config.max_lag)
        report["statsmodels_pair_seconds"] = time.perf_counter() - started
    report["reference_rows"] = len(design)
    report["pipeline_pair_seconds"] = best
    report["speedup"] = report["statsmodels_pair_seconds"] / best


def main() -> dict:
    common.require_real_data()
    settings = common.bench_settings("granger")
    report: dict = {"machine": common.machine(), "month": MONTH, "pairs": len(PAIRS)}
    report.update(build_base_layer(settings))
    config = GrangerConfig(pairs=PAIRS, workers=1)
    report["config"] = config
    time_cli(settings, report)
    conn = db.connect(settings)
    time_in_process(conn, config, report)
    time_reference(conn, config, report)
    conn.close()
    return report


def print_report(report: dict) -> None:
    config = report["config"]
    print(f"granger, {report['pairs']} pairs × {report['month']} on {report['machine']}")
    print(
        f"  base layer: {report['bars']:,} bars, dbt run to bqx_values + ml_periods "
        f"{report['build_seconds']:.1f} s"
    )
    tests = report["tests"]
    print(
        f"  bqx granger --workers 2 (max lag {config.max_lag}, vol window {config.vol_window}): "
        f"{report['cli_seconds']:.1f} s for {tests:,} tests ({report['ordered_pairs']} ordered "
        f"pairs, median {report['n_obs_median']:,} rows) = {tests / report['cli_seconds']:,.0f} "
        "tests/s, end to end (start-up, reading, tests, tables, reports)"
    )
    print(
        f"  in process, 1 worker: {report['in_process_seconds']:.1f} s = reading bqx_60 "
        f"{report['read_seconds']:.1f} s + testing {report['test_seconds']:.1f} s "
        f"({tests / report['test_seconds']:,.0f} tests/s)"
    )
    leader, follower = REFERENCE_PAIR
    print(
        f"  one ordered pair ({leader}→{follower}, {report['reference_rows']:,} rows, lags "
        f"1-{config.max_lag}): pipeline {report['pipeline_pair_seconds'] * 1000:.0f} ms, "
        f"statsmodels grangercausalitytests {report['statsmodels_pair_seconds']:.2f} s "
        f"({report['speedup']:.0f}x)"
    )
    print(
        f"  significant links: {report['significant']} of {report['ordered_pairs']} "
        f"(skipped {report['skipped']}); strongest: {'; '.join(report['strongest'])}"
    )
    print("  known links: " + "; ".join(report["known_links"]))
    print(f"  peak memory of bqx granger (PSS, with PostgreSQL): {report['peak_pss_gib']:.2f} GiB")


if __name__ == "__main__":
    print_report(main())
