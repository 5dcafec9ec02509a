"""Stage 2.19, the online learner: step latency for 28 pairs, replay throughput, drift delay.

- latency: one handler step (predict + store 28 predictions, learn 28 outcomes, drift, 28
  checkpoints) on a generated stream as wide as the default feature list, PostgreSQL store;
  learners warmed for WARM_MINUTES first; also a cold step (28 checkpoints loaded first, as
  a fresh Lambda container does). Plan: model update within 5 s.
- replay: minutes/s for 3 pairs, checkpoints every 60 replayed minutes.
- drift: delay from the first outcome that reveals a planted change (the relation between
  features and target flips) to the first alarm, over DRIFT_SEEDS streams (8 features); alarms on
  stationary streams. Plan: within 10 minutes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from bench import common
from bqx import db
from bqx.pairs import PAIRS

sys.path.insert(0, str(common.REPO / "lambda"))  # the Lambda code root (see bqx/cli/online.py)

from bqx_online.config import DEFAULT_FEATURES, DriftConfig, OnlineConfig  # noqa: E402
from bqx_online.drift import DriftMonitor  # noqa: E402
from bqx_online.ensemble import AdaptiveEnsemble  # noqa: E402
from bqx_online.replay import replay  # noqa: E402
from bqx_online.service import OnlineService  # noqa: E402
from bqx_online.storage_postgres import PostgresStore  # noqa: E402
from bqx_online.synthetic import StreamSpec, feature_names, generate, minute  # noqa: E402

START = datetime(2024, 3, 4, tzinfo=UTC)
WIDTH = len(DEFAULT_FEATURES)
WARM_MINUTES = 150
TIMED_STEPS = 30
REPLAY_PAIRS = ("EURUSD", "GBPUSD", "USDJPY")
REPLAY_MINUTES = 1000
DRIFT_SEEDS = 8
STATIONARY_STREAMS = 3
STATIONARY_MINUTES = 3000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def config(pairs, **changes) -> OnlineConfig:
    return OnlineConfig(pairs=tuple(pairs), features=tuple(feature_names(WIDTH)), **changes)


def latency(settings) -> dict:
    spec = StreamSpec(start=START, minutes=WARM_MINUTES + TIMED_STEPS + 1, n_features=WIDTH)
    source = generate(spec, PAIRS)
    store = PostgresStore(db.connect(settings), settings.home / "online")
    store.ensure()
    service = OnlineService(config(PAIRS, checkpoint_every=1), store, source)
    for i in range(WARM_MINUTES):
        service.step(minute(spec, i))
    timed = range(WARM_MINUTES, WARM_MINUTES + TIMED_STEPS)
    reports = [service.step(minute(spec, i)) for i in timed]
    steps = [r.seconds for r in reports]
    started = time.perf_counter()
    cold = OnlineService(config(PAIRS), store, source)  # a fresh container: loads 28 learners
    for pair in PAIRS:
        cold.state(pair)
    load_seconds = time.perf_counter() - started
    cold_step = cold.step(minute(spec, WARM_MINUTES + TIMED_STEPS)).seconds
    checkpoint_bytes = len(service.state("EURUSD").to_bytes())
    store.close()
    return {
        "step_p50_s": statistics.median(steps),
        "step_p95_s": percentile(steps, 0.95),
        "step_max_s": max(steps),
        "predict_p50_s": statistics.median(r.predict_seconds for r in reports),
        "learn_p50_s": statistics.median(r.learn_seconds for r in reports),
        "checkpoint_p50_s": statistics.median(r.checkpoint_seconds for r in reports),
        "load_average": os.getloadavg()[0],
        "cold_load_s": load_seconds,
        "cold_step_s": cold_step,
        "checkpoint_kib": checkpoint_bytes / 1024,
    }


def throughput(settings) -> dict:
    spec = StreamSpec(start=START, minutes=REPLAY_MINUTES, n_features=WIDTH, seed=1)
    source = generate(spec, REPLAY_PAIRS)
    store = PostgresStore(db.connect(settings), settings.home / "online_replay")
    store.ensure()
    for pair in REPLAY_PAIRS:
        store.reset(pair)
    service = OnlineService(config(REPLAY_PAIRS, checkpoint_every=60), store, source)
    result = replay(service, source.minutes())
    store.close()
    return {
        "replay_minutes": result.minutes,
        "replay_seconds": result.seconds,
        "replay_minutes_per_s": result.minutes_per_second,
        "replay_pair_minutes_per_s": result.minutes_per_second * len(REPLAY_PAIRS),
    }


def alarms_on(spec: StreamSpec) -> list[tuple[datetime, str]]:
    """Alarms of the default ensemble + monitor on one generated stream (prequential)."""
    source = generate(spec, ["EURUSD"])
    model, monitor, alarms = AdaptiveEnsemble(), DriftMonitor(DriftConfig()), []
    horizon = timedelta(minutes=spec.horizon_minutes)
    for t in source.minutes():
        x = source.features(t, ["EURUSD"])["EURUSD"]
        y = source.realized("EURUSD", t + horizon)
        value, members, _ = model.predict_members(x)
        model.learn_one(x, y, members)
        alarms += [(t + horizon, s.detector) for s in monitor.update(abs(y - value))]
    return alarms


def drift() -> dict:
    delays, early, missed = [], 0, 0
    for seed in range(DRIFT_SEEDS):
        spec = StreamSpec(start=START, minutes=950, n_features=8, change_at=800, seed=seed)
        alarms = alarms_on(spec)
        revealed = minute(spec, spec.change_at + spec.horizon_minutes)
        early += sum(1 for t, _ in alarms if t < revealed)
        after = [t for t, _ in alarms if t >= revealed]
        if after:
            delays.append((min(after) - revealed).total_seconds() / 60)
        else:
            missed += 1
    stationary = 0
    for seed in range(STATIONARY_STREAMS):
        spec = StreamSpec(start=START, minutes=STATIONARY_MINUTES, n_features=8, seed=100 + seed)
        stationary += len(alarms_on(spec))
    return {
        "drift_delays_min": delays,
        "drift_delay_median_min": statistics.median(delays) if delays else None,
        "drift_delay_max_min": max(delays) if delays else None,
        "drift_within_10_min": sum(d <= 10 for d in delays),
        "drift_missed": missed,
        "alarms_before_change": early,
        "stationary_alarms": stationary,
        "stationary_minutes": STATIONARY_STREAMS * STATIONARY_MINUTES,
    }


def main() -> dict:
    settings = common.bench_settings("online")
    report = {"machine": common.machine(), "features": WIDTH}
    report.update(latency(settings))
    report.update(throughput(settings))
    report.update(drift())
    return report


def print_report(report: dict) -> None:
    print(f"machine: {report['machine']}; generated stream, {report['features']} features")
    print(
        f"  one step, 28 pairs (predict, store, learn, drift, 28 checkpoints): "
        f"p50 {report['step_p50_s']:.2f} s, p95 {report['step_p95_s']:.2f} s, "
        f"max {report['step_max_s']:.2f} s (plan: < 5 s); p50 parts: predict+store "
        f"{report['predict_p50_s']:.2f} s, learn+drift {report['learn_p50_s']:.2f} s, "
        f"28 checkpoints {report['checkpoint_p50_s']:.2f} s; load average during the run "
        f"{report['load_average']:.1f} on 2 cores"
    )
    print(
        f"  cold container: load 28 checkpoints {report['cold_load_s']:.2f} s, then a step "
        f"{report['cold_step_s']:.2f} s; one checkpoint {report['checkpoint_kib']:.0f} KiB"
    )
    print(
        f"  replay, {len(REPLAY_PAIRS)} pairs: {report['replay_minutes']:,} minutes in "
        f"{report['replay_seconds']:.1f} s = {report['replay_minutes_per_s']:.1f} minutes/s "
        f"({report['replay_pair_minutes_per_s']:.0f} pair-minutes/s)"
    )
    delays = ", ".join(f"{d:.0f}" for d in report["drift_delays_min"])
    print(
        f"  planted change, {DRIFT_SEEDS} streams: alarm delay after the first revealing outcome "
        f"median {report['drift_delay_median_min']} min, max {report['drift_delay_max_min']} min "
        f"({report['drift_within_10_min']}/{DRIFT_SEEDS} within 10 min, "
        f"{report['drift_missed']} missed; delays: {delays})"
    )
    print(
        f"  false alarms: {report['alarms_before_change']} before the planted changes, "
        f"{report['stationary_alarms']} in {report['stationary_minutes']:,} stationary minutes"
    )


if __name__ == "__main__":
    print_report(main())
