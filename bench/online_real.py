"""Stage 2.19 on real 2017 bars: the online ensemble against predicting zero, every minute.

Opt-in (long): `BQX_HOME=... python -m bench.online_real` (pairs: BQX_ONLINE_REAL_PAIRS,
default EURUSD,GBPUSD,USDJPY). Uses the database of BQX_HOME; when its feature matrix is empty
it first ingests Oct-Dec 2017 of all 28 pairs from ../shared/data/fx_m1 (sister correlations
need every sister of a pair) and runs `bqx build --train-end 2017-10-31`. Then:

- warm-up: the online learner replays WARM (late October), learning as it goes;
- evaluation: it replays EVAL (November-December) on the same clock, predicting, learning
  60 minutes later, monitoring drift;
- static: a ridge regression (standardised inputs, the same features) fitted once on WARM's
  minutes and their realized bqx_60 an hour later, then applied to EVAL unchanged;
- scored on the same (pair, minute) keys (`--score` scores what a stopped run stored): MAE and
  directional accuracy of bqx_60 at t+60 for the ensemble, each member, the ridge and zero;
  the paired difference |y - ŷ| - |y| against the zero member with a 95% interval from the
  project's stationary block bootstrap (models_ml.evaluation.bootstrap.paired_mean_interval:
  arch, mean block 1,440 rows = one day of minutes, the pairs of one minute together);
  drift alarms per pair-week of the evaluation span.

The learner steps every minute, as the handler does. An earlier version stepped one minute in
20 to save time, but the ensemble and the monitor count outcomes, not time: the monitor's
warm-up (1,440 outcomes) and baseline (720) then took 20 days of market time, the trailing
scale's half-life (240 outcomes) 3.3 days, and the CUSUM allowances were calibrated on outcomes
one minute apart (59 of 60 future returns shared). Scaling those by the stride would measure a
differently configured learner; fewer pairs stepped every minute measure the real one.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench import common
from bqx import db
from bqx.config import Settings
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.ingest.loader import ingest_files
from bqx.pairs import PAIRS as UNIVERSE
from models_ml.evaluation.bootstrap import DAY_MINUTES, paired_mean_interval

sys.path.insert(0, str(common.REPO / "lambda"))  # the Lambda code root (see bqx/cli/online.py)

from bqx_online import river_copies  # noqa: E402
from bqx_online.batched import BatchedStore  # noqa: E402
from bqx_online.config import DEFAULT_FEATURES, EnsembleConfig, OnlineConfig  # noqa: E402
from bqx_online.drift import DriftMonitor  # noqa: E402
from bqx_online.ensemble import ensemble_replay, learned_scales  # noqa: E402
from bqx_online.evaluation import (  # noqa: E402
    StoredStream,
    learned_predictions,
    score,
    score_by_period,
    stored_stream,
)
from bqx_online.features import load_history  # noqa: E402
from bqx_online.replay import replay  # noqa: E402
from bqx_online.service import OnlineService  # noqa: E402
from bqx_online.storage_postgres import PostgresPredictions, PostgresStore  # noqa: E402

_PAIRS = os.environ.get("BQX_ONLINE_REAL_PAIRS", "EURUSD,GBPUSD,USDJPY")
PAIRS = tuple(UNIVERSE) if _PAIRS == "all" else tuple(_PAIRS.split(","))
# the warm-up's first day (BQX_ONLINE_REAL_WARM_FROM) and a wall-time cap on the evaluation
# replay in seconds (BQX_ONLINE_REAL_MAX_SECONDS; it stops at the next market day, scored as far
# as it got)
WARM = (
    datetime.fromisoformat(os.environ.get("BQX_ONLINE_REAL_WARM_FROM", "2017-10-23")).replace(
        tzinfo=UTC
    ),
    datetime(2017, 11, 1, tzinfo=UTC),
)
MAX_SECONDS = float(os.environ.get("BQX_ONLINE_REAL_MAX_SECONDS", "0"))
EVAL = (datetime(2017, 11, 1, tzinfo=UTC), datetime(2017, 12, 30, tzinfo=UTC))
HORIZON = 60
RESAMPLES = 1000
# the gate's validation span (--tune-gate): rows of these days whose outcome matured before
# EVAL: the last hour of October predicts November bars and is left out
VALIDATION = (datetime(2017, 10, 26, tzinfo=UTC), EVAL[0] - timedelta(minutes=HORIZON))
# where a replay starts reading a run: before its first prediction (the weighting and the scale
# start from the run's first outcome)
RUN_START = datetime(2017, 1, 1, tzinfo=UTC)
MARGIN_GRID = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
RATE_GRID = (0.03, 0.1, 0.3, 1.0)


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


def progress_printer(label: str):
    """A replay progress callback: done / total, elapsed and minutes/s, to stdout (the log)."""
    started = time.perf_counter()

    def show(_what: str, done: int, total: int) -> None:
        seconds = time.perf_counter() - started
        print(
            f"  {label}: {done:,}/{total:,} minutes, {seconds:.0f} s, {done / seconds:.1f} "
            f"minutes/s, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )

    return show


def pair_weeks(learned: list, start: datetime) -> float:
    """Weeks of the evaluation span the learner had seen outcomes of (a stopped run: fewer)."""
    if not learned:
        return 0.0
    return (learned[-1].ts_utc + timedelta(minutes=HORIZON) - start) / timedelta(days=7)


def interval(difference: np.ndarray, ts_epoch: np.ndarray) -> dict:
    found = paired_mean_interval(difference, ts_epoch, DAY_MINUTES, n_resamples=RESAMPLES)
    return {"mean": found.value, "low": found.low, "high": found.high}


def score_pairs(store, static, pairs) -> dict:
    """Everything scored on the (pair, minute) keys the ensemble, the ridge and zero share."""
    out: dict = {"pairs_detail": {}}
    pooled_diff, pooled_ts, pooled_y, pooled_pred = [], [], [], []
    weeks_total, alarms_total = 0.0, 0
    pooled_replayed, replayed_alarms = [], 0
    for pair in pairs:
        learned = learned_predictions(store, pair, HORIZON, EVAL[0], EVAL[1])
        keyed = [p for p in learned if int(p.ts_utc.timestamp()) in static[pair]]
        if not keyed:
            continue
        y = np.array([p.realized for p in keyed])
        pred = np.array([p.prediction for p in keyed])
        ts = np.array([int(p.ts_utc.timestamp()) for p in keyed])
        ridge_pred = np.array([static[pair][t] for t in ts])
        difference = np.abs(y - pred) - np.abs(y)
        members = sorted({m for p in keyed for m in p.member_predictions})
        online = score_by_period(keyed, half_month)
        fitted = static[pair]
        ridge = score_by_period(keyed, half_month, lambda p, f=fitted: f[int(p.ts_utc.timestamp())])
        zero = score_by_period(keyed, half_month, lambda p: 0.0)
        events = store.drift_events(pair)
        in_eval = [e for e in events if EVAL[0] <= e.ts_utc < EVAL[1]]
        weeks = pair_weeks(keyed, EVAL[0])
        weeks_total += weeks
        alarms_total += len(in_eval)
        pooled_diff.append(difference)
        pooled_ts.append(ts)
        pooled_y.append(y)
        pooled_pred.append(pred)
        shipped = shipped_replay(store, pair, ts, y, weeks)
        pooled_replayed.append(shipped.pop("difference"))
        replayed_alarms += shipped["alarms_eval"]
        out["pairs_detail"][pair] = {
            "n": len(keyed),
            "first": f"{keyed[0].ts_utc:%Y-%m-%d %H:%M}",
            "last": f"{keyed[-1].ts_utc:%Y-%m-%d %H:%M}",
            "static_train_rows": static[pair]["_train_rows"],
            "online": score(zip(pred, y, strict=True)).__dict__,
            "static": score(zip(ridge_pred, y, strict=True)).__dict__,
            "zero_mae": float(np.mean(np.abs(y))),
            "online_minus_zero": interval(difference, ts),
            "ridge_minus_zero": interval(np.abs(y - ridge_pred) - np.abs(y), ts),
            "member_mae": {
                m: float(
                    np.mean([abs(p.realized - p.member_predictions.get(m, 0.0)) for p in keyed])
                )
                for m in members
            },
            "mean_weight": {
                m: float(np.mean([p.weights.get(m, 0.0) for p in keyed])) for m in members
            },
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
            "pair_weeks": weeks,
            "alarms_per_pair_week": len(in_eval) / weeks if weeks else float("nan"),
            "drift_by_week": dict(Counter(f"{e.ts_utc:%G-W%V}" for e in in_eval)),
            "drift_first": [f"{e.ts_utc:%Y-%m-%d %H:%M} {e.detector}" for e in in_eval[:8]],
            "shipped_replayed": shipped,
        }
    if pooled_diff:
        y, pred = np.concatenate(pooled_y), np.concatenate(pooled_pred)
        out["pooled"] = {
            "n": len(y),
            "online_mae": float(np.mean(np.abs(y - pred))),
            "zero_mae": float(np.mean(np.abs(y))),
            "online_da": score(zip(pred, y, strict=True)).directional_accuracy,
            "online_minus_zero": interval(np.concatenate(pooled_diff), np.concatenate(pooled_ts)),
            "alarms": alarms_total,
            "pair_weeks": weeks_total,
            "alarms_per_pair_week": alarms_total / weeks_total if weeks_total else float("nan"),
            "shipped_replayed": {
                "config": repr(EnsembleConfig()),
                "mae": float(np.mean(np.abs(y) + np.concatenate(pooled_replayed))),
                "minus_zero": interval(np.concatenate(pooled_replayed), np.concatenate(pooled_ts)),
                "alarms": replayed_alarms,
                "alarms_per_pair_week": replayed_alarms / weeks_total if weeks_total else math.nan,
            },
        }
    return out


def shipped_replay(store, pair: str, ts: np.ndarray, y: np.ndarray, weeks: float) -> dict:
    """The shipped weighting (EnsembleConfig()) replayed over the members a run stored, from
    its first outcome (replay_weighting), scored on the keys `ts` of the evaluation with
    outcomes `y`; beside it, plain Hedge replayed the same way against the stored ensemble
    (the proof the replay is the run's weighting when the run's code was plain Hedge) and
    the drift monitor fed the replayed predictions (replay_alarms). "difference": |y - ŷ| -
    |y| per key, popped by the caller for the pooled interval."""
    stream = stored_stream(learned_predictions(store, pair, HORIZON, RUN_START, EVAL[1]))
    shipped = EnsembleConfig()
    # one loss unit for both weightings (the same config's scale half-lives)
    scale = learned_scales(stream.y, (stream.ts // 60).astype(np.int64), shipped)
    gated = replay_weighting(stream, shipped, scale)
    plain = replay_weighting(stream, replace(shipped, margin=-math.inf), scale)
    by_ts = dict(zip(stream.ts.astype(np.int64).tolist(), gated.tolist(), strict=True))
    predicted = np.array([by_ts[int(t)] for t in ts])
    difference = np.abs(y - predicted) - np.abs(y)
    alarms = replay_alarms(stream, gated, OnlineConfig(pairs=(pair,)))
    in_eval = [a for a in alarms if EVAL[0].timestamp() <= a < EVAL[1].timestamp()]
    return {
        "difference": difference,
        "mae": float(np.mean(np.abs(y - predicted))),
        "minus_zero": interval(difference, ts),
        "exactly_zero_share": float(np.mean(predicted == 0.0)),
        "plain_replay_max_abs_difference": float(np.max(np.abs(plain - stream.prediction))),
        "alarms_eval": len(in_eval),
        "alarms_per_pair_week": len(in_eval) / weeks if weeks else math.nan,
    }


def replay_weighting(
    stream: StoredStream, config: EnsembleConfig, scale: np.ndarray | None = None
) -> np.ndarray:
    """`config`'s weighting over the stored member predictions, from the run's first outcome
    (ensemble.ensemble_replay; the loss unit rebuilt with ensemble.learned_scales). Legitimate
    because no member depends on the weights: members learn every outcome whatever their
    weight, and an alarm resets no member (service.OnlineService._learn only records it)."""
    if scale is None:  # (the same for every weighting of one config's scale half-lives)
        scale = learned_scales(stream.y, (stream.ts // 60).astype(np.int64), config)
    return ensemble_replay(
        stream.names, stream.members, stream.y, scale, config, known=stream.known
    )


def replay_alarms(stream: StoredStream, prediction: np.ndarray, online: OnlineConfig) -> list:
    """Minutes (outcome time, epoch seconds) at which the shipped drift monitor alarms when fed
    `prediction` (a replayed weighting) in the service's order: the skill and direction of
    each outcome in the unit its prediction was made in (AdaptiveEnsemble.prediction_scale,
    rebuilt from the realized outcomes as learned_scales does)."""
    from bqx_online.ensemble import AdaptiveEnsemble

    probe = AdaptiveEnsemble(online.ensemble)  # its scale, skill and direction only
    monitor = DriftMonitor(online.drift)
    alarms = []
    for ts, y, value in zip(
        stream.ts.tolist(), stream.y.tolist(), prediction.tolist(), strict=True
    ):
        minute = int(ts) // 60
        unit = probe.prediction_scale(minute, online.horizon_minutes)
        probe.scale_.update(y, minute)
        if monitor.update(probe.skill(y, value, unit), probe.direction(y, value, unit)):
            alarms.append(ts + online.horizon_minutes * 60)
    return alarms


def tune_gate(pairs) -> dict:
    """The gate's margin (and Hedge's rate) on the validation span only, from the member
    predictions a run of main's code stored (BQX_DATABASE_URL; read-only, rows before
    VALIDATION's end only). First the proof that the replay is the live weighting: plain
    Hedge (margin -inf) replayed from the run's first outcome must reproduce the stored
    ensemble predictions."""
    settings = Settings.from_env()
    conn = db.connect(settings)
    conn.set_session(readonly=True)
    reader = PostgresPredictions(conn)  # no store: it would create its checkpoint dir and key
    shipped = EnsembleConfig()
    plain = replace(shipped, margin=-math.inf)
    streams, largest = {}, {}
    for pair in pairs:
        rows = learned_predictions(reader, pair, HORIZON, WARM[0], VALIDATION[1])
        if not rows:
            continue
        stream = stored_stream(rows)
        scale = learned_scales(stream.y, (stream.ts // 60).astype(np.int64), shipped)
        streams[pair] = (stream, scale)
        replayed = replay_weighting(stream, plain, scale)
        largest[pair] = float(np.max(np.abs(replayed - stream.prediction)))
    conn.close()
    load = os.getloadavg()[0]
    grid: dict = {}
    for margin in (-math.inf, *MARGIN_GRID):
        for rate in RATE_GRID:
            config = replace(shipped, margin=margin, rate=rate)
            diffs, stamps, errors, zeros, exact_zero = [], [], [], [], 0
            for stream, scale in streams.values():
                replayed = replay_weighting(stream, config, scale)
                valid = stream.ts >= VALIDATION[0].timestamp()
                y, p = stream.y[valid], replayed[valid]
                diffs.append(np.abs(y - p) - np.abs(y))
                stamps.append(stream.ts[valid].astype(np.int64))
                errors.append(np.abs(y - p))
                zeros.append(np.abs(y))
                exact_zero += int(np.sum(p == 0.0))
            n = sum(len(d) for d in diffs)
            grid[(margin, rate)] = {
                "n": n,
                "mae": float(np.concatenate(errors).mean()),
                "zero_mae": float(np.concatenate(zeros).mean()),
                "exactly_zero_share": exact_zero / n,
                "minus_zero": interval(np.concatenate(diffs), np.concatenate(stamps)),
            }
    return {
        "machine": common.machine(),
        "load_start": load,
        "load_end": os.getloadavg()[0],
        "pairs": list(streams),
        "rows": {pair: len(s.y) for pair, (s, _) in streams.items()},
        "validation": [f"{VALIDATION[0]:%Y-%m-%d %H:%M}", f"{VALIDATION[1]:%Y-%m-%d %H:%M}"],
        "replay_max_abs_difference": largest,
        "grid": grid,
    }


def print_tune_gate(report: dict) -> None:
    print(
        f"machine: {report['machine']}; load {report['load_start']:.1f} -> "
        f"{report['load_end']:.1f}; {len(report['pairs'])} pairs; validation "
        f"{report['validation'][0]} .. {report['validation'][1]} (outcomes before November)"
    )
    worst = max(report["replay_max_abs_difference"].values())
    print(
        f"  plain Hedge replayed from each pair's first outcome vs the stored ensemble "
        f"predictions: max |difference| {worst:.3g} over {sum(report['rows'].values()):,} rows"
    )
    for (margin, rate), row in report["grid"].items():
        label = "plain Hedge" if margin == -math.inf else f"margin {margin:g}"
        print(
            f"  {label}, rate {rate:g}: n={row['n']:,} MAE {row['mae']:.8f} zero "
            f"{row['zero_mae']:.8f}; ensemble - zero {_ci_scientific(row['minus_zero'])}; "
            f"exactly 0 on {row['exactly_zero_share']:.4f} of the minutes"
        )


def replay_span(service, minutes, label: str, deadline: float | None = None) -> dict:
    """Replay `minutes` a market day at a time (each day ends with a checkpoint of every
    learner), stopping at the first day boundary after `deadline` (perf_counter seconds)."""
    days: dict = {}
    for minute in minutes:
        days.setdefault(minute.date(), []).append(minute)
    done, seconds, steps, stopped = 0, 0.0, [], None
    show = progress_printer(label)
    for day, day_minutes in days.items():
        if deadline is not None and time.perf_counter() > deadline:
            stopped = f"{day}"
            break
        result = replay(service, day_minutes)
        done += result.minutes
        seconds += result.seconds
        steps.extend(result.step_seconds)
        show("replaying minutes", done, len(minutes))
    return {"minutes": done, "seconds": seconds, "steps": steps, "stopped_before": stopped}


def open_learner(conn, settings: Settings, pairs, checkpoint_every: int, batched: bool):
    """The replay's store and service: the plain PostgresStore (every write its own round
    trip, as the handler does) or BatchedStore over it (batch_minutes = checkpoint_every)."""
    store = PostgresStore(conn, settings.artifacts_dir / "online_real")
    store.ensure()
    for pair in pairs:
        store.reset(pair)
    if batched:
        store = BatchedStore(store, batch_minutes=checkpoint_every)
    config = OnlineConfig(pairs=tuple(pairs), checkpoint_every=checkpoint_every)
    return store, config


def throughput(pairs, days: int) -> dict:
    """Before / after on the same span, pairs and machine: the first `days` market days of
    WARM replayed with the plain store, checkpoints every 60 minutes and river's generic
    deepcopy (the old driver), then with BatchedStore, a checkpoint per market day and
    river_copies' exact copies, without and with its direct Var combination for the splitter
    (the new one). The stored predictions of the runs must be identical: what changed is how
    fast, not what is measured."""
    settings = Settings.from_env()
    prepare(settings)
    conn = db.connect(settings)
    source = load_history(conn, pairs, WARM[0], EVAL[1], DEFAULT_FEATURES, HORIZON, False)
    minutes = [m for m in source.minutes() if m < WARM[1]]
    first_days = sorted({m.date() for m in minutes})[:days]
    minutes = [m for m in minutes if m.date() in first_days]
    out: dict = {"pairs": list(pairs), "minutes": len(minutes), "runs": {}}
    stored = {}
    runs = (
        ("before", 60, False, False),
        ("after, copies only", 1440, True, False),  # online16d's driver
        ("after", 1440, True, True),  # and the splitter's direct Var combination
    )
    for name, every, batched, combine in runs:
        if batched:
            river_copies.install(combine)
        else:
            river_copies.uninstall()  # river's generic deepcopy, as before
        store, config = open_learner(conn, settings, pairs, every, batched)
        service = OnlineService(config, store, source)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        replay(service, minutes)
        seconds = time.perf_counter() - started
        if isinstance(store, BatchedStore):
            store.flush()
            store = store.store
        stored[name] = {
            pair: [
                (p.ts_utc, p.prediction, p.member_predictions, p.realized)
                for p in learned_predictions(store, pair, HORIZON, WARM[0], WARM[1])
            ]
            for pair in pairs
        }
        out["runs"][name] = {
            "seconds": seconds,
            "pair_minutes_per_s": len(minutes) * len(pairs) / seconds,
            "load_before": load,
            "load_after": os.getloadavg()[0],
            "learned": sum(len(v) for v in stored[name].values()),
        }
    out["identical_predictions"] = all(stored["before"] == v for v in stored.values())
    out["speedup"] = (
        out["runs"]["after"]["pair_minutes_per_s"] / out["runs"]["before"]["pair_minutes_per_s"]
    )
    conn.close()
    return out


def main(score_only: bool = False) -> dict:
    settings = Settings.from_env()
    prepare(settings)
    conn = db.connect(settings)
    started = time.perf_counter()
    source = load_history(conn, PAIRS, WARM[0], EVAL[1], DEFAULT_FEATURES, HORIZON, False)
    read_seconds = time.perf_counter() - started
    static = ridge_static(source, PAIRS)
    report: dict = {
        "machine": common.machine(),
        "pairs": list(PAIRS),
        "features": len(source.feature_names),
        "read_seconds": read_seconds,
        "load_start": os.getloadavg()[0],
    }
    if not score_only:
        # a market day per batch and per checkpoint: the learner is the handler's, stepped
        # every minute; only the driver's writes are batched (BatchedStore)
        store, config = open_learner(conn, settings, PAIRS, 1440, batched=True)
        service = OnlineService(config, store, source)
        minutes = source.minutes()
        warm_minutes = [m for m in minutes if m < WARM[1]]
        eval_minutes = [m for m in minutes if m >= EVAL[0]]
        deadline = time.perf_counter() + MAX_SECONDS if MAX_SECONDS else None
        warm = replay_span(service, warm_minutes, "warm-up")
        evaluation = replay_span(service, eval_minutes, "evaluation", deadline)
        store.flush()
        report |= {
            "warm_minutes": warm["minutes"],
            "eval_minutes": evaluation["minutes"],
            "eval_stopped_before": evaluation["stopped_before"],
            "replay_minutes_per_s": (warm["minutes"] + evaluation["minutes"])
            / (warm["seconds"] + evaluation["seconds"]),
            "step_p50_ms": float(np.median(evaluation["steps"]) * 1e3),
        }
    store = PostgresStore(conn, settings.artifacts_dir / "online_real")
    report |= score_pairs(store, static, PAIRS)
    report["load_end"] = os.getloadavg()[0]
    conn.close()
    out = settings.reports_dir / f"online_real_{len(PAIRS)}_pairs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    report["json"] = str(out)
    return report


def _ci(d: dict) -> str:
    """An interval (interval()) to 5 decimals."""
    return f"{d['mean']:+.5f} [{d['low']:+.5f}, {d['high']:+.5f}]"


def _ci_scientific(d: dict) -> str:
    """An interval to 4 significant digits: differences near float noise (a replayed weighting
    against zero), which 5 decimals would print as +0.00000."""
    return f"{d['mean']:+.3e} [{d['low']:+.3e}, {d['high']:+.3e}]"


def print_report(report: dict) -> None:
    print(
        f"machine: {report['machine']}; load {report['load_start']:.1f} -> {report['load_end']:.1f}"
    )
    if "warm_minutes" in report:
        print(
            f"  pairs {', '.join(report['pairs'])}; {report['features']} features; every minute; "
            f"warm-up {report['warm_minutes']:,} and evaluation {report['eval_minutes']:,} "
            f"replayed minutes at {report['replay_minutes_per_s']:.1f} minutes/s (step p50 "
            f"{report['step_p50_ms']:.0f} ms for {len(report['pairs'])} pairs)"
        )
    for pair, d in report["pairs_detail"].items():
        o, s = d["online"], d["static"]
        print(
            f"  {pair}: n={d['n']:,} ({d['first']} .. {d['last']})  MAE online {o['mae']:.5f} | "
            f"static ridge {s['mae']:.5f} | zero {d['zero_mae']:.5f};  online - zero "
            f"{_ci(d['online_minus_zero'])}, ridge - zero {_ci(d['ridge_minus_zero'])};  "
            f"direction online {o['directional_accuracy']:.3f} | static "
            f"{s['directional_accuracy']:.3f};  drift alarms {d['drift_events_eval']} in "
            f"{d['pair_weeks']:.2f} pair-weeks ({d['alarms_per_pair_week']:.2f} per pair-week), "
            f"{d['drift_events_warm']} in the warm-up"
        )
        members = ", ".join(
            f"{m} {d['member_mae'][m]:.5f} (w {d['mean_weight'][m]:.3f})" for m in d["member_mae"]
        )
        print(f"    members' MAE (mean weight): {members}")
        for period, p in d["by_half_month"].items():
            print(
                f"    {period}: n={p['n']:,} MAE online {p['online_mae']:.5f} static "
                f"{p['static_mae']:.5f} zero {p['zero_mae']:.5f}; direction online "
                f"{p['online_da']:.3f} static {p['static_da']:.3f}"
            )
        r = d["shipped_replayed"]
        print(
            f"    the shipped weighting replayed over the stored members: MAE {r['mae']:.5f}; "
            f"ensemble - zero {_ci_scientific(r['minus_zero'])}; exactly 0 on "
            f"{r['exactly_zero_share']:.4f} of the minutes; drift alarms fed the replayed "
            f"ensemble {r['alarms_eval']} ({r['alarms_per_pair_week']:.2f} per pair-week); "
            f"plain Hedge replayed vs stored: max |difference| "
            f"{r['plain_replay_max_abs_difference']:.3g}"
        )
        print(f"    drift by ISO week: {d['drift_by_week']}")
        print(f"    first drift events: {'; '.join(d['drift_first'])}")
    if "pooled" in report:
        q = report["pooled"]
        print(
            f"  pooled: n={q['n']:,} MAE online {q['online_mae']:.5f} zero {q['zero_mae']:.5f}; "
            f"online - zero {_ci(q['online_minus_zero'])} (95%, stationary block bootstrap, mean "
            f"block {DAY_MINUTES} minutes, {RESAMPLES} resamples); direction {q['online_da']:.3f}; "
            f"drift alarms {q['alarms']} in {q['pair_weeks']:.2f} pair-weeks "
            f"({q['alarms_per_pair_week']:.2f} per pair-week)"
        )
        r = q["shipped_replayed"]
        print(
            f"  the shipped weighting replayed over the stored members ({r['config']}): pooled "
            f"MAE {r['mae']:.5f}; ensemble - zero {_ci_scientific(r['minus_zero'])} (95%, the same "
            f"bootstrap); drift alarms fed the replayed ensemble {r['alarms']} "
            f"({r['alarms_per_pair_week']:.2f} per pair-week)"
        )
    print(f"  written: {report.get('json')}")


if __name__ == "__main__":
    if "--tune-gate" in sys.argv:
        print_tune_gate(tune_gate(PAIRS))
    elif "--throughput" in sys.argv:
        days = int(os.environ.get("BQX_ONLINE_REAL_DAYS", "2"))
        print(json.dumps(throughput(PAIRS, days), indent=2, default=str))
    else:
        print_report(main(score_only="--score" in sys.argv))
