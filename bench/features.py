"""Benchmark: the base feature layer for one real 2017 month of all 28 pairs.

Prints wall time and rows/s of the dbt build, per-model times, the cost ratio of a 630-minute
regression window over a 60-minute one (same SQL, same rows), the ratio against a pandas
implementation of the same REG and vol features computed in this run, and peak memory; then
the cross-pair stage 2.16 on the same month (cross-pair tables, Granger, lead-lag table).

The SQL side of the pandas ratio is the three models' dbt times inside the two-thread build,
so it moves with the load of the machine; each model is also rebuilt alone afterwards and the
CPU seconds of the PostgreSQL server during that run are reported (`model_cpu_seconds`), a
measure the other processes on the machine barely change.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench import common
from bqx import db
from bqx.dbt_runner import dbt_command, dbt_env, dbt_target_dir
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS

MONTH = "2017-03"
REG_WINDOWS = (60, 90, 150, 240, 390, 630)
VOL_WINDOWS = (30, 60, 90, 150, 240, 390, 630)
REG_VOL_MODELS = ("reg_rate", "reg_bqx", "volatility")


def run_dbt_timed(settings, args: list[str]) -> float:
    started = time.perf_counter()
    run = subprocess.run(
        dbt_command(settings, args),
        env=dbt_env(settings),
        cwd=common.REPO,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:  # dbt says why on stdout; a bare CalledProcessError does not
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{run.stdout[-4000:]}")
    return time.perf_counter() - started


def model_cpu_seconds(settings, models: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds of the PostgreSQL server while each model is rebuilt alone (`dbt run`)."""
    server = db.postmaster_pid(settings)
    if server is None:  # an external server: its processes are not ours to read
        return {}
    seconds = {}
    for model in models:
        before = common.server_cpu_seconds(server)
        run_dbt_timed(settings, ["run", "--select", model])
        time.sleep(0.5)  # the backend's exit reaches the postmaster's children times
        seconds[model] = common.server_cpu_seconds(server) - before
    return seconds


def window_cost(settings, conn, w: int) -> float:
    """Seconds to run the single-window regression probe (analyses/window_cost.sql)."""
    run_dbt_timed(settings, ["compile", "--select", "window_cost", "--vars", json.dumps({"w": w})])
    sql = (dbt_target_dir(settings) / "compiled/bqx/analyses/window_cost.sql").read_text()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
        best = min(best, time.perf_counter() - started)
    return best


def pandas_reference(series: pd.DataFrame) -> float:
    """The same REG (rate index and bqx) and vol features with pandas rolling sums; seconds."""
    started = time.perf_counter()
    for _, group in series.groupby(["pair", "segment_start_utc"], sort=False):
        n = group["segment_row"].to_numpy(dtype=float)
        for y in (group["rate_index"].to_numpy(), group["bqx_60"].to_numpy()):
            frame = pd.DataFrame({"y": y, "ny": n * y, "nny": n * n * y, "yy": y * y})
            for w in REG_WINDOWS:
                sums = frame.rolling(w).sum()
                n0 = n - w + 1
                t1 = sums["ny"] - n0 * sums["y"]
                t2 = sums["nny"] - 2 * n0 * sums["ny"] + n0 * n0 * sums["y"]
                p1y = t1 - (w - 1) / 2 * sums["y"]
                p2y = t2 - (w - 1) * t1 + (w - 1) * (w - 2) / 6 * sums["y"]
                g1 = p1y / (w * (w * w - 1) / 12)
                g2 = p2y / (w * (w * w - 1) * (w * w - 4) / 180)
                sst = sums["yy"] - sums["y"] ** 2 / w
                _ = np.sqrt(np.maximum(sst - g1 * p1y - g2 * p2y, 0) / w)
        returns = pd.Series(100 * np.log(group["close"]).diff().to_numpy())
        for w in VOL_WINDOWS:
            _ = returns.rolling(w).std()
    return time.perf_counter() - started


def main() -> dict:
    common.require_real_data()
    settings = common.bench_settings("features")
    report: dict = {"machine": common.machine(), "month": MONTH, "pairs": len(PAIRS)}
    with tempfile.TemporaryDirectory() as tmp:
        rows = common.write_month_slices(list(PAIRS), MONTH, Path(tmp))
        conn = db.connect(settings)
        ingest_files(conn, [Path(tmp)])
        conn.close()
    report["bars"] = rows
    run_dbt_timed(settings, ["seed"])
    with common.peak_memory(report, db.postmaster_pid(settings)):
        started = time.perf_counter()
        run_dbt_timed(
            settings, ["run", "--select", "+ml_feature_matrix", "--exclude", "resource_type:seed"]
        )
        report["build_seconds"] = time.perf_counter() - started
    report["model_seconds"] = common.dbt_node_seconds(settings)
    conn = db.connect(settings)
    with conn.cursor() as cur:
        cur.execute("select count(*) from bqx.int_m1_series")
        report["grid_rows"] = cur.fetchone()[0]
    report["rows_per_second"] = report["grid_rows"] / report["build_seconds"]
    cost_60, cost_630 = window_cost(settings, conn, 60), window_cost(settings, conn, 630)
    report["window_630_over_60"] = cost_630 / cost_60
    series = pd.read_sql(
        "select pair, segment_start_utc, segment_row, rate_index, bqx_60, close "
        "from bqx.int_m1_series order by pair, ts_utc",
        conn,
    )
    conn.close()
    sql_seconds = sum(report["model_seconds"][m] for m in REG_VOL_MODELS)
    report["pandas_seconds"] = pandas_reference(series)
    report["sql_reg_vol_seconds"] = sql_seconds
    report["sql_over_pandas"] = sql_seconds / report["pandas_seconds"]
    report["model_cpu_seconds"] = model_cpu_seconds(settings, REG_VOL_MODELS)
    if report["model_cpu_seconds"]:
        cpu = sum(report["model_cpu_seconds"].values())
        report["sql_cpu_over_pandas"] = cpu / report["pandas_seconds"]
    report.update(cross_pair_stage(settings))
    return report


def cross_pair_stage(settings) -> dict:
    """Stage 2.16 on the same month: split, sister choice and three cross-pair tables, then
    Granger on the train period, then the lead-lag table it feeds (the order of `make demo`)."""
    from models_ml.granger.discovery import GrangerConfig, discover, write_results

    out: dict = {}
    out["cross_pair_seconds"] = run_dbt_timed(
        settings,
        [
            "run",
            "--select",
            "ml_periods sister_pair_selection+",
            "--exclude",
            "cross_pair_lead_lag+",
        ],
    )
    conn = db.connect(settings)
    started = time.perf_counter()
    config = GrangerConfig(pairs=PAIRS)
    result = discover(conn, config)
    write_results(conn, result, config.pairs)
    out["granger_seconds"] = time.perf_counter() - started
    out["granger_tests"], out["granger_links"] = len(result.tests), len(result.relationships)
    out["lead_lag_seconds"] = run_dbt_timed(settings, ["run", "--select", "cross_pair_lead_lag+"])
    with conn.cursor() as cur:
        cur.execute("select count(*) from bqx.cross_pair_momentum")
        out["cross_pair_rows"] = cur.fetchone()[0]
    conn.close()
    return out


def print_report(report: dict) -> None:
    print(f"base layer, {report['pairs']} pairs × {report['month']} on {report['machine']}")
    print(f"  bars ingested {report['bars']:,}; grid rows {report['grid_rows']:,}")
    print(
        f"  dbt run (grid → matrix): {report['build_seconds']:.1f} s, "
        f"{report['rows_per_second']:,.0f} grid rows/s"
    )
    for model, seconds in sorted(report["model_seconds"].items(), key=lambda kv: -kv[1]):
        print(f"    {model:<22} {seconds:6.1f} s")
    print(
        "  window 630 / window 60 (rolling regression, same rows): "
        f"{report['window_630_over_60']:.2f}"
    )
    print(
        f"  REG + vol: SQL {report['sql_reg_vol_seconds']:.1f} s vs pandas rolling sums "
        f"{report['pandas_seconds']:.1f} s (SQL/pandas = {report['sql_over_pandas']:.2f})"
    )
    if report.get("model_cpu_seconds"):
        cpu = ", ".join(f"{m} {s:.1f} s" for m, s in report["model_cpu_seconds"].items())
        print(
            f"  server CPU, each model rebuilt alone: {cpu} "
            f"(SQL CPU/pandas = {report['sql_cpu_over_pandas']:.2f})"
        )
    print(f"  peak memory (PSS of PostgreSQL + dbt): {report['peak_pss_gib']:.2f} GiB")
    stage = report["cross_pair_seconds"] + report["granger_seconds"] + report["lead_lag_seconds"]
    print(
        f"cross-pair stage 2.16, same month: {stage:.0f} s in all "
        f"({report['cross_pair_rows'] / stage:,.0f} rows/s per cross-pair table)"
    )
    print(
        "  momentum + volatility + correlation drift (+ sisters): "
        f"{report['cross_pair_seconds']:.0f} s"
    )
    print(
        f"  Granger: {report['granger_seconds']:.0f} s for {report['granger_tests']:,} tests, "
        f"{report['granger_links']} significant ordered pairs"
    )
    print(f"  lead-lag table: {report['lead_lag_seconds']:.0f} s")


if __name__ == "__main__":
    print_report(main())
