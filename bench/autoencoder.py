"""Benchmark: autoencoder training rows/s and embedding extraction rows/s (stage 2.17).

Builds one real 2017 month (base features, the split, the cross-pair layer; the lead-lag
table is left empty: Granger has its own benchmark) in a database of its own, then trains the
shared autoencoder on a train-period sample through the library (`train_autoencoder`, as
`bqx train autoencoder` does) and embeds every input row of the month (`embed`, as `bqx
embed`). Training rows/s = sample rows × epochs run / fit seconds (TensorFlow's fit only);
extraction rows/s = rows written / seconds of the whole embed step (reading, encoding,
binary COPY back). Peak memory (PSS, with this bench's PostgreSQL) of each step.

Environment, for a quicker run: BENCH_AE_PERIOD (a prefix of ts_utc, default "2017-03";
"2017-03-0" is its first nine days), BENCH_AE_SAMPLE_ROWS (default 50000), BENCH_AE_EPOCHS
(default 5). Always all 28 pairs: the base layer's sister correlations need every sister.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench import common
from bench.features import run_dbt_timed
from bqx import db
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS
from models_ml.autoencoder.embeddings import EmbedConfig, embed
from models_ml.autoencoder.training import AutoencoderConfig, train_autoencoder

MONTH = os.environ.get("BENCH_AE_PERIOD", "2017-03")
EMPTY_LEAD_LAGS = """
create table if not exists bqx.lead_lag_relationships (
    leader text, follower text, lag_minutes integer, f_stat float8, p_value float8,
    p_adjusted float8, effect_size float8, train_start timestamptz, train_end timestamptz,
    primary key (leader, follower)
)
"""


def build_inputs(settings, pairs: list[str], period: str = MONTH) -> dict:
    """Ingest the period and build both feature views; returns bars and build seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        bars = common.write_month_slices(pairs, period, Path(tmp))
        conn = db.connect(settings)
        ingest_files(conn, [Path(tmp)])
        with conn, conn.cursor() as cur:
            cur.execute("create schema if not exists bqx")
            cur.execute(EMPTY_LEAD_LAGS)
        conn.close()
    run_dbt_timed(settings, ["seed"])
    seconds = run_dbt_timed(
        settings,
        [
            "run",
            "--select",
            "+ml_feature_matrix +ml_cross_pair_features",
            "--exclude",
            "resource_type:seed",
        ],
    )
    return {"bars": bars, "build_seconds": seconds}


def main() -> dict:
    common.require_real_data()
    pairs = list(PAIRS)
    sample_rows = int(os.environ.get("BENCH_AE_SAMPLE_ROWS", 50_000))
    config = AutoencoderConfig(
        sample_rows=sample_rows,
        validation_rows=max(sample_rows // 4, len(pairs)),
        epochs=int(os.environ.get("BENCH_AE_EPOCHS", 5)),
        patience=100,  # time every epoch asked for
        pairs=tuple(pairs),
    )
    settings = common.bench_settings("autoencoder")
    report: dict = {
        "machine": common.machine(),
        "month": MONTH,
        "pairs": len(pairs),
        "config": config,
    }
    report.update(build_inputs(settings, pairs))
    server = db.postmaster_pid(settings)
    conn = db.connect(settings)
    train_report: dict = {}
    with common.peak_memory(train_report, server):
        started = time.perf_counter()
        result = train_autoencoder(conn, settings, config)
        report["train_step_seconds"] = time.perf_counter() - started
    manifest = result.manifest
    training = manifest["training"]
    report["train_rows"] = manifest["scaler"]["rows"]
    report["epochs_run"] = training["epochs_run"]
    report["fit_seconds"] = training["seconds"]
    report["train_rows_per_second"] = training["rows_per_second"]
    report["train_peak_gib"] = train_report["peak_pss_gib"]
    report["width"] = manifest["input_width"]
    embed_report: dict = {}
    with common.peak_memory(embed_report, server):
        embedded = embed(conn, settings, EmbedConfig(pairs=tuple(pairs)))
    conn.close()
    report["embed_rows"] = embedded.rows
    report["embed_seconds"] = embedded.seconds
    report["embed_rows_per_second"] = embedded.rows_per_second
    report["embed_peak_gib"] = embed_report["peak_pss_gib"]
    return report


def print_report(report: dict) -> None:
    config = report["config"]
    print(f"autoencoder, {report['pairs']} pairs × {report['month']} on {report['machine']}")
    print(
        f"  inputs: {report['bars']:,} bars, dbt run to both feature views "
        f"{report['build_seconds']:.1f} s; {report['width']} input columns"
    )
    print(
        f"  training: {report['train_rows']:,} rows × {report['epochs_run']} epochs "
        f"(batch {config.batch_size}) in {report['fit_seconds']:.1f} s of fit = "
        f"{report['train_rows_per_second']:,.0f} rows/s; whole step (sampling, fit, baselines, "
        f"saving) {report['train_step_seconds']:.1f} s, peak memory "
        f"{report['train_peak_gib']:.2f} GiB"
    )
    print(
        f"  embedding extraction: {report['embed_rows']:,} rows in {report['embed_seconds']:.1f} s "
        f"= {report['embed_rows_per_second']:,.0f} rows/s (read, encode, write), peak memory "
        f"{report['embed_peak_gib']:.2f} GiB"
    )


if __name__ == "__main__":
    print_report(main())
