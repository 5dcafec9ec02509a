"""The whole chain on real 2017 bars with the pinned split (train Jan–Aug, validation Sep–Oct,
test Nov–Dec): ingest → build → granger → lead-lag rebuild → autoencoder → embed → multi-task
nets → predictions → walk-forward scoreboard → report.

Opt-in (`python -m bench.run_all real_2017`, or `python -m bench.real_2017`): all 28 pairs
and the full year take the better part of an hour on the 2-core machine (the base build alone
~20-25 min of both cores). A subset for a busy machine, by environment variables:

- `BENCH_REAL_PAIRS=EURUSD,GBPUSD,USDJPY` (default: all 28),
- `BENCH_REAL_MONTHS=2017-06..2017-12` (default 2017-01..2017-12; the split stays pinned, so
  fewer months shorten the train period only),
- `BENCH_REAL_AE_ROWS`, `BENCH_REAL_AE_EPOCHS` (autoencoder sample and epochs: 50000, 20),
  `BENCH_REAL_MT_ROWS`, `BENCH_REAL_MT_EPOCHS` (multi-task train rows per pair and epochs:
  20000, 50), `BENCH_REAL_EVAL_ROWS` (walk-forward train rows per pair: 20000),
  `BENCH_REAL_BOOTSTRAP` (resamples: 200),
- `BENCH_REAL_KEEP=1` keeps the database afterwards (default: dropped, it is GBs);
  `BENCH_REAL_REUSE=1` skips ingest and build when the kept database has them, and
  `BENCH_REAL_FROM=evaluate` (or multitask, predict) also the steps before.

It prints the scoreboard (every stage of each target on common rows, 95% paired
block-bootstrap intervals; evaluation.md of the run) after the run's settings and step times,
and the report is written under the bench's home (`.bqx/bench/real_2017/reports/index.html`).
The walk-forward scores the multi-task nets and embeddings from the test start only, so with
them present the scoreboard is the test period (Nov–Dec).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bqx import db
from bqx.config import Settings
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS, parse_pairs

TRAIN_END = "2017-09-01"
VALIDATION_END = "2017-11-01"


def option(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_REAL_{name}", default) or default


def month_range(text: str) -> tuple[str, str]:
    first, _, last = text.partition("..")
    return first.strip(), (last or first).strip()


def write_slices(pairs: list[str], first: str, last: str, out: Path) -> list[Path]:
    """<PAIR>.csv.gz of the months first..last (YYYY-MM) of the real 2017 files."""
    data = common.require_real_data()
    paths = []
    for pair in pairs:
        path = out / f"{pair}.csv.gz"
        with gzip.open(data / f"{pair}.csv.gz", "rt") as src, gzip.open(path, "wt") as dst:
            dst.write(src.readline())
            for line in src:
                if first <= line[:7] <= last:
                    dst.write(line)
        paths.append(path)
    return paths


def bqx(settings, *args: str) -> float:
    """Run a bqx command against the bench's database; its wall seconds."""
    env = os.environ | {"BQX_HOME": str(settings.home), "BQX_DATABASE_URL": settings.database_url}
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "bqx.cli", *args], env=env, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"bqx {' '.join(args)} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return time.perf_counter() - started


def built(settings) -> bool:
    conn = db.connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("select to_regclass('bqx.ml_targets') is not null")
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def drop_database(settings) -> None:
    """Drop the bench's database (the server stays: it may be the user's)."""
    name = settings.database_url.split("/")[-1].split("?")[0]
    base = Settings(home=settings.home, database_url=os.environ.get("BQX_DATABASE_URL"))
    conn = db.psycopg2.connect(db.database_url(base))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"drop database if exists {name} with (force)")
    conn.close()


def main() -> dict:
    pairs = parse_pairs(option("PAIRS", ",".join(PAIRS)))
    first, last = month_range(option("MONTHS", "2017-01..2017-12"))
    reuse = option("REUSE", "0") == "1"
    settings = common.bench_settings("real_2017", fresh=not reuse)
    report: dict = {
        "machine": common.machine(),
        "pairs": pairs,
        "months": f"{first}..{last}",
        "load_start": os.getloadavg(),
        "steps": {},
    }
    steps = report["steps"]
    pair_list = ",".join(pairs)
    split = ["--train-end", TRAIN_END, "--validation-end", VALIDATION_END]
    if not (reuse and built(settings)):
        with tempfile.TemporaryDirectory() as tmp:
            files = write_slices(pairs, first, last, Path(tmp))
            started = time.perf_counter()
            conn = db.connect(settings)
            try:
                report["bars"] = sum(r.rows_loaded for r in ingest_files(conn, files))
            finally:
                conn.close()
            steps["ingest"] = time.perf_counter() - started
        # the database holds only the bench's pairs: no --pairs scope (with one, the planner
        # took a nested loop in cross_pair_correlation_drift: > 15 min on 6 pairs × 8 months)
        with common.peak_memory(report, db.postmaster_pid(settings)):
            steps["build"] = bqx(settings, "build", *split)
        # the full-year build's per-model table, which issue 17 tracks, comes from here too
        report["build_model_seconds"] = common.dbt_node_seconds(settings, kind="model")
        steps["granger"] = bqx(settings, "granger", "--pairs", pair_list)
        steps["lead-lag rebuild"] = bqx(
            settings, "build", "--select", "cross_pair_lead_lag+", *split
        )
    chain = ("autoencoder", "multitask", "predict", "evaluate")
    start = option("FROM", "autoencoder") if reuse else "autoencoder"
    if start not in chain:
        raise SystemExit(f"BENCH_REAL_FROM must be one of {', '.join(chain)}")
    todo = chain[chain.index(start) :]
    if "autoencoder" in todo:
        steps["autoencoder"] = bqx(
            settings,
            "train",
            "autoencoder",
            "--sample-rows",
            option("AE_ROWS", "50000"),
            "--epochs",
            option("AE_EPOCHS", "20"),
        )
        steps["embed"] = bqx(settings, "embed", "--pairs", pair_list)
    if "multitask" in todo:
        steps["multitask"] = bqx(
            settings,
            "train",
            "multitask",
            "--pairs",
            pair_list,
            "--sample-rows",
            option("MT_ROWS", "20000"),
            "--epochs",
            option("MT_EPOCHS", "50"),
        )
    if "predict" in todo:
        steps["predict"] = bqx(settings, "predict", "multitask", "--pairs", pair_list)
    report["load_evaluate"] = os.getloadavg()
    steps["evaluate"] = bqx(
        settings,
        "evaluate",
        "--pairs",
        pair_list,
        "--folds",
        "3",
        "--train-rows",
        option("EVAL_ROWS", "20000"),
        "--bootstrap",
        option("BOOTSTRAP", "200"),
    )
    steps["report"] = bqx(settings, "report")
    reports = settings.home / "reports"
    report["scoreboard"] = (reports / "evaluation.md").read_text()
    report["report_path"] = str(reports / "index.html")
    report["load_end"] = os.getloadavg()
    if option("KEEP", "0") != "1":
        drop_database(settings)
        report["database"] = "dropped"
    else:
        report["database"] = f"kept: {settings.database_url}"
    return report


def print_report(report: dict) -> None:
    subset = len(report["pairs"]) < len(PAIRS) or report["months"] != "2017-01..2017-12"
    print(
        f"real 2017, {'SUBSET: ' if subset else ''}{len(report['pairs'])} pairs "
        f"({','.join(report['pairs'])}), months {report['months']}; split pinned: train to "
        f"{TRAIN_END}, validation to {VALIDATION_END}, test to the end of the data"
    )
    print(f"machine: {report['machine']}")
    for key in ("load_start", "load_evaluate", "load_end"):
        print(f"  load average {key[5:]}: " + " / ".join(f"{v:.2f}" for v in report[key]))
    if "bars" in report:
        print(f"  bars ingested: {report['bars']:,}")
    for step, seconds in report["steps"].items():
        print(f"  {step:<18} {seconds:7.0f} s")
    if "build_model_seconds" in report:
        print(f"  build peak memory (PSS of PostgreSQL + dbt): {report['peak_pss_gib']:.2f} GiB")
        print("  slowest models of the build:")
        slowest = sorted(report["build_model_seconds"].items(), key=lambda kv: -kv[1])
        for model, seconds in slowest[:12]:
            print(f"    {model:<30} {seconds:7.0f} s")
    print(f"  report: {report['report_path']}; database {report['database']}")
    print()
    print(report["scoreboard"])


if __name__ == "__main__":
    print_report(main())
