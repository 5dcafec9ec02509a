"""Benchmark: the feature build on Spark (local session) beside PostgreSQL, same data, same run.

One real 2017 month of six pairs of four currencies (every pair has four sisters among them):
bars ingested into PostgreSQL, the base and cross-pair layers built there with dbt, the bars
exported to parquet (`bqx export-parquet`), and the same dbt selection built with
`--target spark` (local[2], shuffle partitions 4, driver memory 2g). Prints wall times, the
Spark / PostgreSQL ratio, per-model times of both, and peak memory. BENCH_SPARK_PAIRS (comma
list) and BENCH_SPARK_MONTH (YYYY-MM) change the data set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import common
from bqx import db
from bqx.dbt_runner import BuildScope, SparkPaths, dbt_command, dbt_env
from bqx.ingest.loader import ingest_files
from bqx.ingest.parquet_store import ParquetStore, export_from_postgres
from bqx.pairs import parse_pairs

DEFAULT_PAIRS = "EURUSD,GBPUSD,EURGBP,USDJPY,EURJPY,GBPJPY"
PAIRS = parse_pairs(os.environ.get("BENCH_SPARK_PAIRS", DEFAULT_PAIRS))
MONTH = os.environ.get("BENCH_SPARK_MONTH", "2017-03")
SELECTION = ["--select", "+ml_feature_matrix", "+ml_cross_pair_features"]
SPARK_ENV = {
    "BQX_SPARK_CORES": "2",
    "BQX_SPARK_DRIVER_MEMORY": "2g",
    "BQX_SPARK_SHUFFLE_PARTITIONS": "4",
}


def run_dbt_timed(settings, args: list[str], scope: BuildScope, target: str) -> float:
    env = dbt_env(settings, target)
    started = time.perf_counter()
    run = subprocess.run(
        dbt_command(settings, args, scope), env=env, cwd=common.REPO, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} on {target} failed:\n{run.stdout[-3000:]}")
    return time.perf_counter() - started


def main() -> dict:
    common.require_real_data()
    os.environ.update(SPARK_ENV)
    settings = common.bench_settings("spark")
    spark_home = SparkPaths.of(settings).home
    shutil.rmtree(spark_home, ignore_errors=True)
    scope = BuildScope.parse(train_end=f"{MONTH}-19")
    report: dict = {"machine": common.machine(), "month": MONTH, "pairs": list(PAIRS)}
    with tempfile.TemporaryDirectory() as tmp:
        report["bars"] = common.write_month_slices(list(PAIRS), MONTH, Path(tmp))
        conn = db.connect(settings)
        ingest_files(conn, [Path(tmp)])
        conn.close()

    run_dbt_timed(settings, ["seed"], scope, "postgres")
    with common.peak_memory(report, db.postmaster_pid(settings), key="postgres_peak_gib"):
        report["postgres_seconds"] = run_dbt_timed(settings, ["run", *SELECTION], scope, "postgres")
    report["postgres_models"] = common.dbt_node_seconds(settings, "postgres")

    conn = db.connect(settings)
    started = time.perf_counter()
    export_from_postgres(conn, ParquetStore(Path(SparkPaths.of(settings).raw)))
    report["export_seconds"] = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute("select count(*) from bqx.int_m1_series")
        report["grid_rows"] = cur.fetchone()[0]
    conn.close()

    run_dbt_timed(settings, ["seed"], scope, "spark")
    with common.peak_memory(report, key="spark_peak_gib"):
        report["spark_seconds"] = run_dbt_timed(settings, ["run", *SELECTION], scope, "spark")
    report["spark_models"] = common.dbt_node_seconds(settings, "spark")
    report["spark_over_postgres"] = report["spark_seconds"] / report["postgres_seconds"]
    shutil.rmtree(spark_home, ignore_errors=True)
    return report


def print_report(report: dict) -> None:
    print(
        f"base + cross-pair layers, {len(report['pairs'])} pairs ({', '.join(report['pairs'])}) "
        f"× {report['month']} on {report['machine']}"
    )
    print(f"  bars {report['bars']:,}; grid rows {report['grid_rows']:,}")
    print(
        f"  PostgreSQL (embedded, dbt-postgres): {report['postgres_seconds']:.1f} s, "
        f"peak {report['postgres_peak_gib']:.2f} GiB"
    )
    print(
        f"  Spark local[2] (dbt-spark session, incl. JVM start): {report['spark_seconds']:.1f} s, "
        f"peak {report['spark_peak_gib']:.2f} GiB; parquet export {report['export_seconds']:.1f} s"
    )
    print(f"  Spark / PostgreSQL wall time: {report['spark_over_postgres']:.2f}")
    print(f"    {'model':<30} {'postgres s':>10} {'spark s':>8}")
    pg, spark = report["postgres_models"], report["spark_models"]
    for model in sorted(set(pg) | set(spark), key=lambda m: -spark.get(m, 0)):
        print(f"    {model:<30} {pg.get(model, 0):10.1f} {spark.get(model, 0):8.1f}")


if __name__ == "__main__":
    print_report(main())
