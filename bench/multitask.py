"""Benchmark: multi-task training time per pair (stage 2.18) on one real 2017 month.

Builds the month's feature views and targets in a database of its own (as
bench/autoencoder.py), trains a small shared autoencoder and embeds the month (the nets read
the embeddings; those steps are timed by bench/autoencoder.py), then trains the per-pair nets
through the library (`train_multitask`, as `bqx train multitask` does) for a few pairs:
seconds of the multi-task net's fit and of its single-task twin per pair, epochs run (early
stopping), rows/s of fit, and the whole step's wall time and peak memory (PSS, with this
bench's PostgreSQL).

Environment, for a quicker run: BENCH_MT_PERIOD (a prefix of ts_utc, default "2017-03"),
BENCH_MT_PAIRS (default EURUSD,GBPUSD,USDJPY), BENCH_MT_SAMPLE_ROWS (default 20000),
BENCH_MT_EPOCHS (default 50, early stopping with patience 10).
"""

from __future__ import annotations

import os
import time

from bench import common
from bench.autoencoder import build_inputs
from bench.features import run_dbt_timed
from bqx import db
from bqx.pairs import PAIRS, parse_pairs
from models_ml.autoencoder.embeddings import EmbedConfig, embed
from models_ml.autoencoder.training import AutoencoderConfig, train_autoencoder
from models_ml.multitask.training import MultitaskConfig, train_multitask

PERIOD = os.environ.get("BENCH_MT_PERIOD", "2017-03")


def main() -> dict:
    common.require_real_data()
    sample_rows = int(os.environ.get("BENCH_MT_SAMPLE_ROWS", 20_000))
    config = MultitaskConfig(
        pairs=tuple(parse_pairs(os.environ.get("BENCH_MT_PAIRS", "EURUSD,GBPUSD,USDJPY"))),
        skip_missing=False,
        sample_rows=sample_rows,
        validation_rows=max(sample_rows // 4, 1),
        test_rows=max(sample_rows // 2, 1),
        epochs=int(os.environ.get("BENCH_MT_EPOCHS", 50)),
    )
    settings = common.bench_settings("multitask")
    report: dict = {"machine": common.machine(), "period": PERIOD, "config": config}
    report.update(build_inputs(settings, list(PAIRS), PERIOD))
    # the targets' regime labels read the thresholds fitted on the train period
    report["targets_seconds"] = run_dbt_timed(
        settings, ["run", "--select", "regime_thresholds_fitted ml_targets"]
    )
    conn = db.connect(settings)
    train_autoencoder(conn, settings, AutoencoderConfig(sample_rows=10_000, epochs=3))
    embed(conn, settings, EmbedConfig())
    with common.peak_memory(report, db.postmaster_pid(settings)):
        started = time.perf_counter()
        result = train_multitask(conn, settings, config)
        report["step_seconds"] = time.perf_counter() - started
    conn.close()
    report["per_pair"] = [
        {
            "pair": p.pair,
            "rows": p.rows.get("train", 0),
            # history keys are per task (bqx_mae, val_regime_loss, ...): any gives the epochs
            "epochs": {
                name: max(map(len, h.values()), default=0) for name, h in p.histories.items()
            },
            "seconds": p.seconds,
        }
        for p in result.pairs
    ]
    return report


def print_report(report: dict) -> None:
    config = report["config"]
    print(f"multi-task nets, {report['period']} (all 28 pairs built) on {report['machine']}")
    print(
        f"  inputs: {report['bars']:,} bars, feature views {report['build_seconds']:.1f} s, "
        f"targets {report['targets_seconds']:.1f} s"
    )
    for p in report["per_pair"]:
        parts = [
            f"{name} {p['seconds'][name]:.1f} s / {p['epochs'][name]} epochs "
            f"({p['rows'] * p['epochs'][name] / p['seconds'][name]:,.0f} rows/s)"
            for name in p["seconds"]
        ]
        print(f"  {p['pair']}: {p['rows']:,} train rows; " + "; ".join(parts))
    mean = sum(sum(p["seconds"].values()) for p in report["per_pair"]) / len(report["per_pair"])
    print(
        f"  mean training time per pair (both nets, max {config.epochs} epochs, early stopping): "
        f"{mean:.1f} s; whole step {report['step_seconds']:.1f} s, peak memory "
        f"{report['peak_pss_gib']:.2f} GiB"
    )


if __name__ == "__main__":
    print_report(main())
