"""Stage 2.19, the online learner: step latency for 28 pairs, replay throughput, drift delay.

- latency: one handler step (predict + store 28 predictions, learn 28 outcomes, drift, 28
  checkpoints) on a generated stream as wide as the default feature list, PostgreSQL store;
  learners warmed for WARM_MINUTES first; also a cold step (28 checkpoints loaded first, as
  a fresh Lambda container does). Plan: model update within 5 s.
- replay: minutes/s for 3 pairs, checkpoints every 60 replayed minutes.
- drift: delay from the first outcome that reveals a planted change (the relation between
  features and target flips) to the first alarm, its distribution over streams with
  overlapping 60-minute horizons; false alarms per pair-week (before the flips, on stationary
  weeks with and without signal, after a volatility change alone); lag-1 autocorrelation of
  the monitored skill per minute and of its 60-minute block means. Plan: within 10 minutes,
  ≤ 1 false alarm per pair per week. Two seed sets: CALIBRATION, which the monitor's settings
  were chosen on (`--calibrate`), and HELD_OUT, the tests' seeds (`--quality`, `make bench`).
- hedge: the gated Hedge's rate (ensemble.gated_hedge, the shipped margin) tuned on validation
  streams (seeds of their own), then the ensemble's
  MAE against the zero member's on test streams, with a 95% moving-block bootstrap interval
  (arch, 60-minute blocks) of the paired difference.

`python -m bench.online --quality` runs only drift and hedge (no database); `--calibrate` runs
the drift measurement on the calibration seeds the monitor's settings were chosen on; `--gate`
the gate's margins on the hedge's validation streams (gate_grid).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from bench import common
from bqx import db
from bqx.pairs import PAIRS

sys.path.insert(0, str(common.REPO / "lambda"))  # the Lambda code root (see bqx/cli/online.py)

from bqx_online.config import (  # noqa: E402
    DEFAULT_FEATURES,
    DriftConfig,
    EnsembleConfig,
    OnlineConfig,
)
from bqx_online.drift import lag1_autocorrelation  # noqa: E402
from bqx_online.ensemble import ensemble_replay, tune_rate  # noqa: E402
from bqx_online.prequential import run_stream  # noqa: E402
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
STATIONARY_STREAMS = 3  # per signal strength (1 and 0)
WEEK = 7 * 24 * 60
CHANGE_AT = 2400  # after the default one-day warm-up and 720-outcome baseline
QUALITY_ENSEMBLE = EnsembleConfig(arf_models=3, bagged_models=2, seed=3)
RATE_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)


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


def stream_run(spec: StreamSpec, ensemble: EnsembleConfig = QUALITY_ENSEMBLE):
    return run_stream(
        generate(spec, ["EURUSD"]), "EURUSD", spec.horizon_minutes, ensemble, DriftConfig()
    )


def alarm_indices(run, spec: StreamSpec) -> list[int]:
    """Alarms as the minute index of the prediction whose outcome tripped them."""
    start = minute(spec, 0)
    return [int((t - start).total_seconds() // 60) - spec.horizon_minutes for t in run.alarms]


@dataclass(frozen=True)
class DriftSeeds:
    """Which generated streams a drift measurement uses."""

    label: str
    flips: range  # planted flips at CHANGE_AT
    vols: range  # volatility tripled and cut to a third at CHANGE_AT (two streams per seed)
    weeks: range  # stationary weeks, signal 1 and 0 (two streams per seed)


# The monitor's allowances and thresholds (config.DriftConfig) were chosen on CALIBRATION;
# HELD_OUT holds the seeds the tests use (tests/python/test_online.py: flips and volatility
# changes 200-203, a stationary week 101), measured here as well, never tuned on.
CALIBRATION = DriftSeeds("calibration", range(1000, 1030), range(1000, 1012), range(1100, 1110))
HELD_OUT = DriftSeeds("held-out", range(200, 200 + DRIFT_SEEDS), range(200, 204), range(100, 103))


def drift(seeds: DriftSeeds = HELD_OUT) -> dict:
    delays, early, missed = [], 0, 0
    for seed in seeds.flips:
        spec = StreamSpec(
            start=START,
            minutes=CHANGE_AT + 200,
            n_features=6,
            change_at=CHANGE_AT,
            overlap=True,
            seed=seed,
        )
        alarms = alarm_indices(stream_run(spec), spec)
        early += sum(1 for i in alarms if i < CHANGE_AT)
        after = [i - CHANGE_AT for i in alarms if i >= CHANGE_AT]
        if after:
            delays.append(min(after))
        else:
            missed += 1
    stationary, monitored, lag1, block_lag1 = 0, 0, [], []
    for seed in seeds.weeks:
        for signal in (1.0, 0.0):
            spec = StreamSpec(
                start=START,
                minutes=WEEK + 60,
                n_features=6,
                overlap=True,
                signal=signal,
                seed=seed,
            )
            run = stream_run(spec)
            stationary += len(run.alarms)
            monitored += len(run.skill) - DriftConfig().warmup - DriftConfig().baseline_window
            if signal:  # with no signal the skill is ~0 throughout (the zero member's weight)
                skill = run.skill[DriftConfig().warmup :]
                lag1.append(lag1_autocorrelation(skill))
                starts = range(0, len(skill) - 59, 60)
                blocks = [statistics.fmean(skill[i : i + 60]) for i in starts]
                block_lag1.append(lag1_autocorrelation(blocks))
    vol_alarms: dict[str, list[int]] = {"3": [], "1/3": []}
    for seed in seeds.vols:
        for label, vol in (("3", 3.0), ("1/3", 1 / 3)):
            spec = StreamSpec(
                start=START,
                minutes=CHANGE_AT + 1500,
                n_features=6,
                change_at=CHANGE_AT,
                change_scale=1.0,
                vol_after=vol,
                overlap=True,
                seed=seed,
            )
            alarms = alarm_indices(stream_run(spec), spec)
            vol_alarms[label] += [i - CHANGE_AT for i in alarms if i >= CHANGE_AT]
    n_vol = sum(len(v) for v in vol_alarms.values())
    # pair-weeks monitored for false alarms: before the flips, after the volatility changes
    # (an alarm there is false by construction) and the stationary weeks
    weeks = (
        len(seeds.flips) * (CHANGE_AT - DriftConfig().warmup - DriftConfig().baseline_window)
        + 2 * len(seeds.vols) * 1440
        + monitored
    ) / WEEK
    return {
        "drift_seeds": seeds.label,
        "drift_delays_min": sorted(delays),
        "drift_delay_median_min": statistics.median(delays) if delays else None,
        "drift_delay_p90_min": percentile(delays, 0.9) if delays else None,
        "drift_delay_max_min": max(delays) if delays else None,
        "drift_within_10_min": sum(d <= 10 for d in delays),
        "drift_streams": len(seeds.flips),
        "drift_missed": missed,
        "alarms_before_change": early,
        "stationary_alarms": stationary,
        "stationary_weeks": monitored / WEEK,
        "vol_change_alarms": n_vol,
        "vol_change_alarm_minutes": vol_alarms,
        "vol_change_streams": 2 * len(seeds.vols),
        "false_alarms_per_pair_week": (early + stationary + n_vol) / weeks,
        "false_alarm_weeks": weeks,
        "skill_lag1": statistics.fmean(lag1),
        "skill_block_lag1": statistics.fmean(block_lag1),
        "load_average": os.getloadavg()[0],
    }


def hedge() -> dict:
    """Tune the rate on validation streams, score it on test streams (other seeds)."""
    from arch.bootstrap import MovingBlockBootstrap

    def runs(seeds, signal):
        return [
            stream_run(
                StreamSpec(
                    start=START, minutes=4000, n_features=6, overlap=True, signal=signal, seed=seed
                )
            )
            for seed in seeds
        ]

    out = {}
    for signal in (0.0, 0.3):
        validation = runs((400, 401), signal)
        members = np.vstack([r.arrays()[1] for r in validation])
        y = np.concatenate([r.arrays()[2] for r in validation])
        scale = np.concatenate([r.arrays()[3] for r in validation])
        # the shipped gate and the live start (ensemble_replay)
        rate, maes = tune_rate(
            validation[0].members, members, y, scale, QUALITY_ENSEMBLE, RATE_GRID, lag=59
        )
        tuned = replace(QUALITY_ENSEMBLE, rate=rate)
        test = runs((500, 501, 502), signal)
        test_tuned = [
            stream_run(r_spec, tuned)
            for r_spec in (
                StreamSpec(
                    start=START, minutes=4000, n_features=6, overlap=True, signal=signal, seed=seed
                )
                for seed in (500, 501, 502)
            )
        ]
        for label, group in (("default", test), ("tuned", test_tuned)):
            prediction = np.concatenate([r.arrays()[0] for r in group])
            realized = np.concatenate([r.arrays()[2] for r in group])
            difference = np.abs(realized - prediction) - np.abs(realized)
            low, high = MovingBlockBootstrap(60, difference, seed=1).conf_int(
                np.mean, reps=1000, method="percentile"
            )[:, 0]
            out[f"signal_{signal}_{label}"] = {
                "rate": rate if label == "tuned" else QUALITY_ENSEMBLE.rate,
                "validation_mae_by_rate": maes,
                "mae": float(np.mean(np.abs(realized - prediction))),
                "zero_mae": float(np.mean(np.abs(realized))),
                "difference_ci95": (float(low), float(high)),
            }
    return {"hedge": out, "load_average_hedge": os.getloadavg()[0]}


def gate_grid(margins=(0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)) -> dict:
    """The gate's margin on the generated validation streams of `hedge` (seeds 400-401, no
    signal and a weak one): each margin's MAE ÷ zero's with the shipped rate, replayed over the
    stored member predictions from the live start (ensemble.ensemble_replay; the streams are
    concatenated as in `hedge`). A tie-breaker beside the real validation days, never a test."""
    out: dict = {"load_start": os.getloadavg()[0]}
    for signal in (0.0, 0.3):
        runs = [
            stream_run(
                StreamSpec(
                    start=START, minutes=4000, n_features=6, overlap=True, signal=signal, seed=seed
                )
            )
            for seed in (400, 401)
        ]
        members = np.vstack([r.arrays()[1] for r in runs])
        y = np.concatenate([r.arrays()[2] for r in runs])
        scale = np.concatenate([r.arrays()[3] for r in runs])
        zero_mae = float(np.mean(np.abs(y)))
        for margin in (-np.inf, *margins):
            config = replace(QUALITY_ENSEMBLE, margin=margin)
            replayed = ensemble_replay(runs[0].members, members, y, scale, config, lag=59)
            out[(signal, margin)] = float(np.mean(np.abs(y - replayed))) / zero_mae
    out["load_end"] = os.getloadavg()[0]
    return out


def main() -> dict:
    settings = common.bench_settings("online")
    report = {"machine": common.machine(), "features": WIDTH}
    report.update(latency(settings))
    report.update(throughput(settings))
    report.update(drift())
    report.update(hedge())
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
    print_quality(report)


def print_quality(report: dict) -> None:
    delays = ", ".join(f"{d:.0f}" for d in report["drift_delays_min"])
    vol = report["vol_change_alarm_minutes"]
    print(
        f"  drift, {report['drift_seeds']} seeds; planted flip, {report['drift_streams']} streams "
        f"with overlapping horizons: alarm delay after the first revealing outcome median "
        f"{report['drift_delay_median_min']} min, p90 {report['drift_delay_p90_min']} min, max "
        f"{report['drift_delay_max_min']} min ({report['drift_within_10_min']}/"
        f"{report['drift_streams']} within 10 min, {report['drift_missed']} missed; sorted "
        f"delays: {delays})"
    )
    print(
        f"  false alarms: {report['alarms_before_change']} before the planted changes, "
        f"{report['stationary_alarms']} in {report['stationary_weeks']:.1f} monitored "
        f"stationary pair-weeks, {report['vol_change_alarms']} after a volatility change alone "
        f"({report['vol_change_streams']} streams; minutes after the change: x3 {vol['3']}, "
        f"x1/3 {vol['1/3']}): {report['false_alarms_per_pair_week']:.2f} per pair-week over "
        f"{report['false_alarm_weeks']:.1f}; skill lag-1 autocorrelation per minute "
        f"{report['skill_lag1']:.2f}, of 60-minute block means {report['skill_block_lag1']:.2f}; "
        f"load {report['load_average']:.1f}"
    )
    if "hedge" not in report:
        return
    for name, row in report["hedge"].items():
        low, high = row["difference_ci95"]
        print(
            f"  {name}: rate {row['rate']}, MAE {row['mae']:.4f} vs zero {row['zero_mae']:.4f}, "
            f"paired difference 95% CI [{low:.4f}, {high:.4f}]"
        )


if __name__ == "__main__":
    if "--gate" in sys.argv:  # the gate's margin on the generated validation streams
        for key, value in gate_grid().items():
            print(key, value)
    elif "--calibrate" in sys.argv:  # the streams the drift monitor's settings were chosen on
        calibration = drift(CALIBRATION)
        print(calibration)
        print_quality(calibration)
    elif "--quality" in sys.argv:
        quality = drift() | hedge()
        print(quality)
        print_quality(quality)
    else:
        print_report(main())
