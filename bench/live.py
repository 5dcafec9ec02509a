"""Issue 15, the live loop: latency from a minute's bars committed to its predictions stored
(the issue's targets: p50 <= 2 s, p99 <= 5 s, 28 pairs on this 2-core machine), and the
throughput of catching up a backlog (the issue asks for one day's).

Split per part (feed commit, LISTEN wake-up, tail build and each model's share of it, the
model step's input read / embeddings / nets, the handler step's predict / learn / checkpoint
parts), then the catch-up: `--backlog-minutes` minutes committed while serve was not looking,
then what serve does at its next look: one tail build over all of them, one model step, and
the handler's steps of every minute in chunks (bqx_online.replay.step_minutes: each chunk's
rows read at once, checkpoints deferred, prediction reads from memory), in minutes/s and per
part.

A generated market of PAIRS from Monday (three trading days, more when the minutes fed need
them; no planted outage: its windows would not refill before the validation period): the
first 64 hours are fed and built in full (`dbt seed` + `dbt run`; Monday is the train period,
Tuesday the validation period, Wednesday morning the test period), then a tiny shared
autoencoder and tiny per-pair multi-task nets are trained on them (real TensorFlow, the
smallest budgets that make real models, the live tests' too: models_ml.live.train_tiny_models;
BQX_BENCH_LIVE_MODELS=0 skips them) and the history embedded; then serve's start-up
(compiling the tail statements before any bar, then its first two tail builds; timed
apart), then
`--minutes` minutes from Wednesday 16:00 are fed one at a time with `bqx feed`'s code (speed
0), and after each commit what serve does: the LISTEN wake-up, the tail build (every
partitioned model, the compiled statements in serve's long-lived dbt), the model step
(models_ml/live.py: the minute's embeddings and multi-task predictions) and the handler's step
(predict + store, learn, checkpoints every 15 minutes at each pair's phase), then the
catch-up, and last the same minutes' cost in a batch build (`--months` of the month, every
partitioned model), per minute and per model, beside the tail's. Run: `python -m bench.live
[--minutes 200] [--backlog-minutes 1440]` (BQX_DATABASE_URL or an embedded server).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd

from bench import common
from bqx import db
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.ingest.feed import play, read_bars
from bqx.pairs import PAIRS as ALL_PAIRS
from bqx.sql import apply_ddl
from bqx.synth import SynthConfig, write_market
from bqx.tail_build import TAIL_SELECTOR, DbtSession, tail_build
from bqx_online.config import OnlineConfig
from bqx_online.features import PostgresFeatures
from bqx_online.replay import step_minutes
from bqx_online.service import OnlineService
from bqx_online.storage_postgres import PostgresStore
from bqx_online.wakeup import BarsListener
from models_ml.autoencoder.training import tiny_autoencoder_config
from models_ml.live import LiveModels, freeze_loaded_objects, train_tiny_models
from models_ml.multitask.training import tiny_config

PAIRS = tuple(os.environ.get("BQX_BENCH_LIVE_PAIRS", ",".join(ALL_PAIRS)).split(","))
MINUTES = int(os.environ.get("BQX_BENCH_LIVE_MINUTES", "20"))
BACKLOG = int(os.environ.get("BQX_BENCH_LIVE_BACKLOG", "60"))
STARTUP = 2  # minutes fed before the measured ones: serve's start-up (see main)
# session: one long-lived dbt (what serve uses); process: a dbt process per tail build
DBT_MODE = os.environ.get("BQX_BENCH_LIVE_DBT", "session")
WITH_MODELS = os.environ.get("BQX_BENCH_LIVE_MODELS", "1") != "0"
START = date(2024, 1, 29)  # a Monday
MONTH = "2024-01-01"  # every minute of the bench is in it: the batch comparison rebuilds it
# Monday trains, Tuesday validates, Wednesday (after the 750-minute embargo) tests
SCOPE = BuildScope(train_end="2024-01-30", validation_end="2024-01-31")
CUT = "2024-01-31 16:00"  # built in full before; fed minute by minute from here
# tiny budgets (seconds of training) that still make real models: the live tests' too
AUTOENCODER = tiny_autoencoder_config(PAIRS)
NETS = tiny_config(PAIRS)


def market_days(after_cut: int) -> int:
    """Monday to Wednesday, and as many more weekdays as the `after_cut` minutes fed after
    CUT need (Wednesday has 480 of them)."""
    return 3 + max(0, math.ceil((after_cut - 480) / 1440))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=MINUTES, help="minutes fed one at a time")
    parser.add_argument(
        "--backlog-minutes", type=int, default=BACKLOG, help="minutes of the catch-up backlog"
    )
    args = parser.parse_args()
    run(args.minutes, args.backlog_minutes)


def run(n_minutes: int, n_backlog: int) -> None:
    load_start = os.getloadavg()
    settings = common.bench_settings("live")
    conn = db.connect(settings)
    with conn, conn.cursor() as cur:
        apply_ddl(cur, "granger")  # an empty lead-lag table: the lead-lag slots stay 0
    with tempfile.TemporaryDirectory() as scratch:
        write_market(
            SynthConfig(
                start=START,
                days=market_days(STARTUP + n_minutes + n_backlog),
                pairs=PAIRS,
                seed=7,
                outage_minutes=0,
            ),
            Path(scratch),
        )
        bars, _ = read_bars([Path(scratch)])
    cut = pd.Timestamp(CUT, tz="UTC")
    began = time.perf_counter()
    play(conn, bars[bars["ts_utc"] < cut], speed=0)
    assert run_dbt(settings, ["--quiet", "seed"]) == 0
    assert run_dbt(settings, ["--quiet", "run"], scope=SCOPE) == 0
    full_build = time.perf_counter() - began
    # the history's multi-task predictions are not needed: serve's steps write the live ones
    training = (
        train_tiny_models(conn, settings, PAIRS, predict_history=False) if WITH_MODELS else None
    )
    live_models = None
    if training:
        began = time.perf_counter()
        live_models = LiveModels.open(conn, settings)  # as serve does at its start
        training += (time.perf_counter() - began,)
        assert live_models.skipped == [], live_models.skipped

    config = replace(OnlineConfig(pairs=PAIRS), checkpoint_every=15)
    store = PostgresStore(db.connect(settings), settings.artifacts_dir / "online")
    store.ensure()
    source = PostgresFeatures(conn, config, config.pairs)
    service = OnlineService(config, store, source)
    session = DbtSession(settings) if DBT_MODE == "session" else None
    listener = BarsListener(db.connect(settings))
    if live_models:
        freeze_loaded_objects()  # as serve does once it has loaded the models
    parts: dict[str, list[float]] = {
        k: [] for k in ("commit", "wake", "tail", "models", "step", "total")
    }
    steps = []
    model_steps = []
    models: dict[str, list[float]] = {}
    later = sorted(bars.loc[bars["ts_utc"] >= cut, "ts_utc"].unique())
    # serve's start-up, timed apart: it compiles the 17 tail statements (bqx/tail_sql.py)
    # before any bar (DbtSession.prepare; without it the first tail ran through dbt and the
    # second compiled); its first two minutes are fed and not part of the percentiles
    began = time.perf_counter()
    prepared = session.prepare(conn, SCOPE) if session else False
    compiled_at_start = time.perf_counter() - began
    startup = []
    for ts in later[:STARTUP]:
        play(conn, bars[bars["ts_utc"] == ts], speed=0)
        assert listener.wait(30) is not None
        began_tail = time.perf_counter()
        tail_build(settings, conn, scope=SCOPE, session=session)
        startup.append(time.perf_counter() - began_tail)
        if live_models:
            live_models.step(conn)
        service.step(pd.Timestamp(ts).to_pydatetime())
    minutes = later[STARTUP : STARTUP + n_minutes]
    for ts in minutes:
        t0 = time.perf_counter()
        play(conn, bars[bars["ts_utc"] == ts], speed=0)
        t1 = time.perf_counter()
        woke = listener.wait(30)
        t2 = time.perf_counter()
        assert woke is not None
        tail_build(settings, conn, scope=SCOPE, session=session)
        t3 = time.perf_counter()
        for model, seconds in (session.last_timings if session else {}).items():
            models.setdefault(model, []).append(seconds)
        stepped = live_models.step(conn) if live_models else None
        t3m = time.perf_counter()
        if live_models:
            assert stepped is not None and stepped.predicted >= len(PAIRS), f"{ts}: {stepped}"
            model_steps.append(stepped)
        report = service.step(pd.Timestamp(ts).to_pydatetime())
        t4 = time.perf_counter()
        assert report.predicted == len(PAIRS), f"{ts}: {report.predicted} predictions"
        steps.append(report)
        for name, value in zip(
            parts, (t1 - t0, t2 - t1, t3 - t2, t3m - t3, t4 - t3m, t4 - t1), strict=True
        ):
            parts[name].append(value)
    # catch-up: a backlog committed minute by minute while nothing ran, then one tail build
    # and every minute stepped
    backlog = later[STARTUP + n_minutes : STARTUP + n_minutes + n_backlog]
    play(conn, bars[bars["ts_utc"].isin(backlog)], speed=0)
    caught = time.perf_counter()
    tail_build(settings, conn, scope=SCOPE, session=session)
    backlog_tail = time.perf_counter() - caught
    backlog_per_model = dict(session.last_timings) if session else {}
    if live_models:
        live_models.step(conn)
    backlog_models = time.perf_counter() - caught - backlog_tail
    todo = source.minutes_between(
        pd.Timestamp(minutes[-1]).to_pydatetime(), pd.Timestamp(backlog[-1]).to_pydatetime()
    )
    backlog_steps: list = []
    reads: list[float] = []

    @contextmanager
    def prefetch(start, last):  # serve's (bqx/cli/online.py), timed
        began_read = time.perf_counter()
        with source.prefetched(start, last):
            reads.append(time.perf_counter() - began_read)
            yield

    step_minutes(service, todo, prefetch, backlog_steps.append)
    catch_up = time.perf_counter() - caught
    # the checkpoints deferred past the backlog (serve takes them over the next 15 minutes)
    flushed = time.perf_counter()
    service.flush(pd.Timestamp(backlog[-1]).to_pydatetime())
    flushed = time.perf_counter() - flushed
    listener.close()
    store.close()
    batch = batch_month_cost(settings, conn)
    conn.close()
    load_end = os.getloadavg()
    print(
        f"live loop, {len(PAIRS)} pairs ({','.join(PAIRS)}), {n_minutes} minutes fed one at a time"
    )
    print(f"machine {common.machine()}; load average {load_start[0]:.1f} → {load_end[0]:.1f}")
    print(f"first 64 hours fed + full dbt seed/run: {full_build:.1f} s")
    if training:
        print(
            f"tiny models: autoencoder {training[0]:.1f} s ({AUTOENCODER.sample_rows:,} rows, "
            f"{AUTOENCODER.epochs} epochs), `bqx embed` of the history {training[1]:.1f} s, "
            f"{len(PAIRS)} multi-task nets {training[2]:.1f} s ({NETS.sample_rows} rows a pair, "
            f"{NETS.epochs} epochs); loaded for the live step in {training[3]:.1f} s"
        )
    else:
        print("no trained models (BQX_BENCH_LIVE_MODELS=0): the model step does nothing")
    print(
        "serve's start-up, before the measured minutes: "
        + (f"tail statements compiled {compiled_at_start:.1f} s, " if prepared else "")
        + "its first tail builds "
        + ", ".join(f"{v:.1f} s" for v in startup)
    )
    print(f"{'part':34s}    p50 s    p99 s    max s")
    for name, label in (
        ("commit", "feed commit (one minute)"),
        ("wake", "commit -> LISTEN wake-up"),
        ("tail", f"tail build (17 models, {DBT_MODE})"),
        ("models", "model step (embeddings + nets)"),
        ("step", "handler step (ensemble)"),
        ("total", "commit -> predictions stored"),
    ):
        v = parts[name]
        print(f"{label:34s} {statistics.median(v):8.3f} {pct(v, 0.99):8.3f} {max(v):8.3f}")
    print(
        "slowest 5, commit -> predictions stored: "
        + ", ".join(f"{v:.2f} s" for v in sorted(parts["total"])[-5:])
    )
    print(
        "handler step parts p50: predict+store "
        f"{statistics.median(r.predict_seconds for r in steps):.3f} s, learn "
        f"{statistics.median(r.learn_seconds for r in steps):.3f} s, checkpoints "
        f"{statistics.median(r.checkpoint_seconds for r in steps):.3f} s "
        f"({sum(r.checkpoints for r in steps)} in {len(steps)} steps)"
    )
    if model_steps:
        print(
            "model step parts p50: input read "
            f"{statistics.median(r.read_seconds for r in model_steps):.3f} s, embeddings "
            f"{statistics.median(r.embed_seconds for r in model_steps):.3f} s, nets "
            f"{statistics.median(r.predict_seconds for r in model_steps):.3f} s "
            f"(rows a minute p50: {statistics.median(r.predicted for r in model_steps):.0f})"
        )
    if models:
        print(
            "tail build per model, p50 s: "
            + ", ".join(
                f"{m} {statistics.median(v):.2f}"
                for m, v in sorted(models.items(), key=lambda kv: -statistics.median(kv[1]))
            )
        )
    print(
        f"catch-up: {len(backlog)} minutes backlog in {catch_up:.1f} s "
        f"({len(backlog) / catch_up:.2f} minutes/s; tail build {backlog_tail:.1f} s, "
        f"model step {backlog_models:.1f} s, the handler's {len(backlog_steps)} steps "
        f"{catch_up - backlog_tail - backlog_models:.1f} s of it)"
    )
    print(
        f"catch-up handler: {len(reads)} chunk reads {sum(reads):.1f} s; steps p50 "
        f"{statistics.median(r.seconds for r in backlog_steps):.3f} s, sums: predict+store "
        f"{sum(r.predict_seconds for r in backlog_steps):.1f} s, learn "
        f"{sum(r.learn_seconds for r in backlog_steps):.1f} s, checkpoints "
        f"{sum(r.checkpoint_seconds for r in backlog_steps):.1f} s; then the deferred "
        f"checkpoints {flushed:.1f} s"
    )
    if backlog_per_model:
        print(
            "catch-up tail build per model, s: "
            + ", ".join(
                f"{m} {v:.2f}" for m, v in sorted(backlog_per_model.items(), key=lambda kv: -kv[1])
            )
        )
    seconds, built, per_model = batch
    tail_p50 = {m: statistics.median(v) for m, v in models.items()}
    print(
        f"batch `bqx build --months {MONTH[:7]}` of the same pairs (the 17 partitioned models, "
        f"{built} minutes): {seconds:.1f} s, {1000 * seconds / built:.1f} ms a minute; "
        f"the tail build of one minute: {statistics.median(parts['tail']):.3f} s p50"
    )
    print(
        "per model, batch ms a minute / tail s p50: "
        + ", ".join(
            f"{m} {1000 * v / built:.1f} / {tail_p50.get(m, float('nan')):.2f}"
            for m, v in sorted(per_model.items(), key=lambda kv: -kv[1])
        )
    )


def batch_month_cost(settings, conn) -> tuple[float, int, dict[str, float]]:
    """The same minutes' cost in a batch build: MONTH rebuilt with `--months` (what `bqx build
    --months` runs for the partitioned models): seconds, minutes of the month built (the grid's
    distinct minutes) and each model's seconds."""
    scope = BuildScope.parse(
        months=MONTH[:7], train_end=SCOPE.train_end, validation_end=SCOPE.validation_end
    )
    began = time.perf_counter()
    assert run_dbt(settings, ["--quiet", "run", "--select", TAIL_SELECTOR], scope=scope) == 0
    seconds = time.perf_counter() - began
    with conn, conn.cursor() as cur:
        cur.execute(
            "select count(distinct ts_utc) from bqx.int_m1_grid_filled"
            " where ts_utc >= %s::date and ts_utc < %s::date + interval '1 month'",
            (MONTH, MONTH),
        )
        built = cur.fetchone()[0]
    return seconds, built, common.dbt_node_seconds(settings, kind="model")


if __name__ == "__main__":
    main()
