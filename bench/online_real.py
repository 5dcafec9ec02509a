"""Stage 2.19 on real 2017 bars: static vs online, and drift events, for a few pairs.

Opt-in (long): `BQX_HOME=.bqx/online_real python -m bench.online_real`. Uses the database of
BQX_HOME; when its feature matrix is empty it first ingests Oct-Dec 2017 of all 28 pairs from
../shared/data/fx_m1 (sister correlations need every sister of a pair) and runs `bqx build
--train-end 2017-10-31`. Then:

- warm-up: the online learner replays WARM (late October), learning as it goes;
- evaluation: it replays EVAL (November-December) on the same clock, predicting, learning
  60 minutes later, monitoring drift;
- static: a ridge regression (standardised inputs, the same features) fitted once on WARM's
  minutes and their realized bqx_60 an hour later, then applied to EVAL unchanged;
- both scored per half month on the same (pair, minute) keys: MAE and directional accuracy
  of bqx_60 at t+60, beside predicting 0 (bqx's long-run mean).

The learner steps one minute in STRIDE (the minutes whose index is a multiple of it), which
keeps the run within the time a shared two-core machine allows (ARF with 10 trees costs
~15-30 ms per pair-minute there); the handler itself steps every minute.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench import common
from bqx import db
from bqx.config import Settings
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS as UNIVERSE

sys.path.insert(0, str(common.REPO / "lambda"))  # the Lambda code root (see bqx/cli/online.py)

from bqx_online.config import OnlineConfig  # noqa: E402
from bqx_online.evaluation import learned_predictions, score, score_by_period  # noqa: E402
from bqx_online.features import load_history  # noqa: E402
from bqx_online.replay import replay  # noqa: E402
from bqx_online.service import OnlineService  # noqa: E402
from bqx_online.storage_postgres import PostgresStore  # noqa: E402

PAIRS = tuple(os.environ.get("BQX_ONLINE_REAL_PAIRS", "EURUSD,GBPUSD,USDJPY").split(","))
WARM = (datetime(2017, 10, 23, tzinfo=UTC), datetime(2017, 11, 1, tzinfo=UTC))
EVAL = (datetime(2017, 11, 1, tzinfo=UTC), datetime(2017, 12, 30, tzinfo=UTC))
STRIDE = int(os.environ.get("BQX_ONLINE_REAL_STRIDE", "20"))
HORIZON = 60


def prepare(settings: Settings) -> None:
    """Ingest Oct-Dec 2017 of every pair and build, unless the matrix already has rows."""
    with db.connect(settings) as conn, conn.cursor() as cur:
        # the built tables, not the views: an unfiltered probe of a view joins everything
        cur.execute("select to_regclass('bqx.ml_cross_pair_features') is not null")
        if cur.fetchone()[0]:
            cur.execute(
                "select exists (select 1 from bqx.sister_correlation where pair = %s)",
                (PAIRS[0],),
            )
            if cur.fetchone()[0]:
                return
    common.require_real_data()
    with tempfile.TemporaryDirectory() as tmp:
        for month in ("2017-10", "2017-11", "2017-12"):
            common.write_month_slices(list(UNIVERSE), month, Path(tmp) / month)
        conn = db.connect(settings)
        ingest_files(conn, sorted(Path(tmp).glob("*/*.csv")))
        conn.close()
    scope = BuildScope.parse(train_end="2017-10-31", validation_end="2017-11-01")
    if run_dbt(settings, ["build"], scope=scope) != 0:
        raise SystemExit("bqx build failed")


def on_stride(minutes: list[datetime]) -> list[datetime]:
    return [m for m in minutes if (int(m.timestamp()) // 60) % STRIDE == 0]


def ridge_static(source, pairs) -> dict[str, dict[int, float]]:
    """{pair: {epoch: prediction}} of a ridge fitted on WARM only, applied to EVAL."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = {}
    names = source.feature_names
    for pair in pairs:
        index, matrix = source._rows[pair]
        rows_x, rows_y, eval_keys = [], [], []
        for epoch, row in index.items():
            ts = datetime.fromtimestamp(epoch, UTC)
            if WARM[0] <= ts < WARM[1]:
                y = source.realized(pair, ts + timedelta(minutes=HORIZON))
                if y is not None and np.isfinite(matrix[row]).all():
                    rows_x.append(matrix[row])
                    rows_y.append(y)
            elif EVAL[0] <= ts < EVAL[1]:
                eval_keys.append((epoch, row))
        model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(rows_x, rows_y)
        keys = [k for k, r in eval_keys if np.isfinite(matrix[r]).all()]
        values = model.predict(matrix[[r for k, r in eval_keys if np.isfinite(matrix[r]).all()]])
        out[pair] = dict(zip(keys, values.tolist(), strict=True))
        out[pair]["_train_rows"] = len(rows_y)
        out[pair]["_features"] = len(names)
    return out


def half_month(ts: datetime) -> str:
    return f"{ts:%Y-%m}-{'a' if ts.day <= 15 else 'b'}"


def main() -> dict:
    settings = Settings.from_env()
    prepare(settings)
    conn = db.connect(settings)
    config = OnlineConfig(pairs=PAIRS, checkpoint_every=60)
    started = time.perf_counter()
    source = load_history(conn, PAIRS, WARM[0], EVAL[1], config.features, HORIZON, False)
    read_seconds = time.perf_counter() - started
    static = ridge_static(source, PAIRS)

    store = PostgresStore(conn, settings.artifacts_dir / "online_real")
    store.ensure()
    for pair in PAIRS:
        store.reset(pair)
    service = OnlineService(config, store, source)
    minutes = on_stride(source.minutes())
    warm = replay(service, [m for m in minutes if m < WARM[1]])
    evaluation = replay(service, [m for m in minutes if m >= EVAL[0]])

    report: dict = {
        "machine": common.machine(),
        "pairs": list(PAIRS),
        "stride": STRIDE,
        "features": len(source.feature_names),
        "read_seconds": read_seconds,
        "warm_minutes": warm.minutes,
        "eval_minutes": evaluation.minutes,
        "replay_minutes_per_s": (warm.minutes + evaluation.minutes)
        / (warm.seconds + evaluation.seconds),
        "step_p50_ms": float(np.median(evaluation.step_seconds) * 1e3),
        "pairs_detail": {},
    }
    for pair in PAIRS:
        learned = learned_predictions(store, pair, HORIZON, EVAL[0], EVAL[1])
        keyed = [p for p in learned if int(p.ts_utc.timestamp()) in static[pair]]
        online = score_by_period(keyed, half_month)
        fitted = static[pair]
        ridge = score_by_period(keyed, half_month, lambda p, f=fitted: f[int(p.ts_utc.timestamp())])
        zero = score_by_period(keyed, half_month, lambda p: 0.0)
        events = store.drift_events(pair)
        in_eval = [e for e in events if EVAL[0] <= e.ts_utc < EVAL[1]]
        report["pairs_detail"][pair] = {
            "n": len(keyed),
            "static_train_rows": static[pair]["_train_rows"],
            "online": score((p.prediction, p.realized) for p in keyed).__dict__,
            "static": score(
                (static[pair][int(p.ts_utc.timestamp())], p.realized) for p in keyed
            ).__dict__,
            "zero": score((0.0, p.realized) for p in keyed).__dict__,
            "by_half_month": {
                period: {
                    "n": online[period].n,
                    "online_mae": online[period].mae,
                    "static_mae": ridge[period].mae,
                    "zero_mae": zero[period].mae,
                    "online_da": online[period].directional_accuracy,
                    "static_da": ridge[period].directional_accuracy,
                }
                for period in online
            },
            "drift_events_warm": len(events) - len(in_eval),
            "drift_events_eval": len(in_eval),
            "drift_by_detector": dict(Counter(e.detector for e in in_eval)),
            "drift_by_week": dict(Counter(f"{e.ts_utc:%G-W%V}" for e in in_eval)),
            "drift_first": [f"{e.ts_utc:%Y-%m-%d %H:%M} {e.detector}" for e in in_eval[:8]],
        }
    conn.close()
    out = settings.reports_dir / f"online_real_{'_'.join(PAIRS)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    report["json"] = str(out)
    return report


def print_report(report: dict) -> None:
    print(f"machine: {report['machine']}")
    print(
        f"  pairs {', '.join(report['pairs'])}; {report['features']} features; one minute in "
        f"{report['stride']}; warm-up {report['warm_minutes']:,} and evaluation "
        f"{report['eval_minutes']:,} replayed minutes at {report['replay_minutes_per_s']:.1f} "
        f"minutes/s (step p50 {report['step_p50_ms']:.0f} ms for {len(report['pairs'])} pairs)"
    )
    for pair, d in report["pairs_detail"].items():
        o, s, z = d["online"], d["static"], d["zero"]
        print(
            f"  {pair}: n={d['n']:,}  MAE online {o['mae']:.5f} | static ridge {s['mae']:.5f} "
            f"| zero {z['mae']:.5f};  direction online {o['directional_accuracy']:.3f} | "
            f"static {s['directional_accuracy']:.3f};  drift events {d['drift_events_eval']} "
            f"in Nov-Dec ({d['drift_by_detector']}), {d['drift_events_warm']} in the warm-up"
        )
        for period, p in d["by_half_month"].items():
            print(
                f"    {period}: n={p['n']:,} MAE online {p['online_mae']:.5f} static "
                f"{p['static_mae']:.5f} zero {p['zero_mae']:.5f}; direction online "
                f"{p['online_da']:.3f} static {p['static_da']:.3f}"
            )
        print(f"    drift by ISO week: {d['drift_by_week']}")
        print(f"    first drift events: {'; '.join(d['drift_first'])}")
    print(f"  written: {report.get('json')}")


if __name__ == "__main__":
    print_report(main())
