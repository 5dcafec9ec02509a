"""`bqx online replay|serve`: the stage 2.19 online learner from the command line."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg2.extensions
import typer

from bqx import db
from bqx.cli._shared import (
    PairsOption,
    console,
    count_option,
    grid,
    pace_rows,
    parse_date,
    parse_minute,
    progress,
    stage_bars,
    user_errors,
    value_table,
)
from bqx.config import Settings
from bqx.errors import BqxUserError

BackendOption = Annotated[
    str, typer.Option(help="Where predictions and checkpoints go: postgres | aws.")
]


def _config(pairs: str | None, arf_models: int, checkpoint_every: int, all_features: bool):
    from bqx.pairs import parse_pairs
    from bqx_online.config import OnlineConfig

    config = OnlineConfig(pairs=tuple(parse_pairs(pairs)), checkpoint_every=checkpoint_every)
    if arf_models < 1:
        raise BqxUserError("--arf-models must be at least 1")
    if checkpoint_every < 1:
        raise BqxUserError("--checkpoint-every must be at least 1")
    config = replace(config, ensemble=replace(config.ensemble, arf_models=arf_models))
    return replace(config, features=()) if all_features else config


@user_errors
def replay(
    pairs: Annotated[str, typer.Option(help="Comma-separated pairs, e.g. EURUSD,GBPUSD.")],
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
    backend: BackendOption = "postgres",
    checkpoint_every: Annotated[
        int, typer.Option(help="Replayed minutes between checkpoints.")
    ] = 60,
    arf_models: Annotated[int, typer.Option(help="Trees of the ARF member.")] = 10,
    all_features: Annotated[
        bool, typer.Option("--all-features", help="Every column of the feature views.")
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Forget the pairs' stored predictions and learners first."),
    ] = False,
):
    """Stream history through the handler's step on a simulated clock, as fast as it can."""
    from bqx_online.evaluation import learned_predictions, score
    from bqx_online.features import load_history
    from bqx_online.replay import replay as run_replay
    from bqx_online.runtime import open_store
    from bqx_online.service import OnlineService

    first, last = parse_date(start), parse_date(end)
    if last < first:
        raise BqxUserError(f"--to {end} is before --from {start}")
    span_start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    span_end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    config = _config(pairs, arf_models, checkpoint_every, all_features)
    settings = Settings.from_env()
    locks = learner_locks(settings, config.pairs)
    store = open_store(backend, settings, config)
    conn = db.connect(settings)
    try:
        store.ensure()
        if fresh:
            for pair in config.pairs:
                store.reset(pair)
        with progress("minutes") as display:
            on_step = stage_bars(display)
            source = load_history(
                conn,
                config.pairs,
                span_start,
                span_end,
                config.features,
                config.horizon_minutes,
                config.use_static,
                on_step,
            )
            minutes = source.minutes()
            if not minutes:
                raise BqxUserError(
                    f"no feature rows for {','.join(config.pairs)} from {start} to {end}: "
                    "run `bqx build` (or pick dates inside the data)"
                )
            service = OnlineService(config, store, source)
            result = run_replay(service, minutes, on_step)
        scores = {
            pair: score(
                (p.prediction, p.realized)
                for p in learned_predictions(
                    store, pair, config.horizon_minutes, span_start, span_end
                )
            )
            for pair in config.pairs
        }
    finally:
        store.close()
        conn.close()
        locks.close()
    _print_replay(result, scores, config, len(source.feature_names))


LEARNER_LOCK = "bqx online learner"  # one learner per pair and database at a time
LEARNER_BUSY = (
    "another `bqx online replay` or `serve` is learning {name} on this database: wait for it "
    "to end (two learners of one pair would mark outcomes neither checkpoint holds)"
)


def learner_locks(settings: Settings, pairs: tuple[str, ...]) -> psycopg2.extensions.connection:
    """The connection holding the pairs' learner locks (close it to release them)."""
    return db.hold_advisory_locks(settings, LEARNER_LOCK, list(pairs), LEARNER_BUSY)


def _print_replay(result, scores, config, n_features: int) -> None:
    summary = [
        ("minutes replayed", f"{result.minutes:,}"),
        ("predictions stored", f"{result.predicted:,}"),
        ("outcomes learned", f"{result.learned:,}"),
        ("checkpoints", f"{result.checkpoints:,}"),
        ("drift events", f"{len(result.drift_events):,}"),
        *pace_rows(result, "step", result.step_seconds, 0.95),
    ]
    table = value_table(
        f"online replay ({len(config.pairs)} pairs, {n_features} features)", summary
    )
    console.print(table)
    per_pair = grid(
        "learned predictions of the span",
        ["pair", "n", "MAE", "directional accuracy", "drift events"],
        left=1,
    )
    for pair, s in scores.items():
        events = sum(1 for e in result.drift_events if e.pair == pair)
        per_pair.add_row(
            pair, f"{s.n:,}", f"{s.mae:.5f}", f"{s.directional_accuracy:.3f}", str(events)
        )
    console.print(per_pair)


@user_errors
def serve(
    pairs: PairsOption = None,
    backend: BackendOption = "postgres",
    max_steps: count_option("Stop after this many steps (default: run until Ctrl-C).") = None,
    poll_seconds: Annotated[
        float,
        typer.Option(help="Longest wait between looks when no bars arrive (it wakes on bars)."),
    ] = 5.0,
    checkpoint_every: Annotated[
        int, typer.Option(help="Minutes between checkpoints (and one at shutdown).")
    ] = 15,
    arf_models: Annotated[int, typer.Option(help="Trees of the ARF member.")] = 10,
    tail: Annotated[
        bool,
        typer.Option(
            "--tail/--no-tail",
            help="Append the new minutes to every feature table (tail build) before each look; "
            "--no-tail when something else builds the features (e.g. `bqx build --tail`): "
            "the model step still runs, over the tail builds it logged.",
        ),
    ] = True,
    until: Annotated[
        str | None,
        typer.Option(
            help="Stop after stepping this minute, 'YYYY-MM-DD HH:MM' UTC (a demo, a backfill)."
        ),
    ] = None,
):
    """Run the handler's step on the wall clock: wake when bars commit (LISTEN bqx_bars),
    tail-build the new minutes' features, step each new minute in order. At the end it prints
    the live latency of the last hour (as the dashboard's live panel shows it)."""
    import signal

    from bqx.tail_build import DbtSession, tail_build, try_build_lock
    from bqx_online.features import PostgresFeatures
    from bqx_online.replay import serve as run_serve
    from bqx_online.runtime import open_store
    from bqx_online.service import OnlineService
    from bqx_online.wakeup import BarsListener
    from models_ml.live import freeze_loaded_objects

    config = _config(pairs, arf_models, checkpoint_every, False)
    stop_after = parse_minute(until, "--until") if until else None
    settings = Settings.from_env()
    locks = learner_locks(settings, config.pairs)
    store = open_store(backend, settings, config)
    conn = db.connect(settings)
    listener = BarsListener(db.connect(settings))

    def stop(signum, frame):  # a SIGTERM (a service manager) ends like Ctrl-C: checkpoint
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        store.ensure()
        source = PostgresFeatures(conn, config, config.pairs)
        service = OnlineService(config, store, source)

        def on_step(report) -> None:
            console.print(
                f"{report.ts_utc:%Y-%m-%d %H:%M} predicted {report.predicted}, learned "
                f"{report.learned}, drift {len(report.drift_events)}, "
                f"checkpoints {report.checkpoints}, {report.seconds * 1e3:.0f} ms",
                highlight=False,
            )

        session = DbtSession(settings) if tail else None
        if session is not None:
            _prepare_tail(settings, conn, session)
        # the model step runs with or without serve's own tail build: it covers every
        # finished tail build in bqx.live_tail_builds, also another process's `bqx build --tail`
        models = _live_models(conn, settings)
        freeze_loaded_objects()  # no full garbage collections through TensorFlow's objects
        busy = [False]  # another build held the lock at the last look

        def look() -> datetime | None:
            """The newest minute of features, read under the build lock after the tail build
            and the model step (None while another build holds the lock: the next wake after
            it catches up). Under the lock no build is half written, so every minute stepped
            has its features and, with trained models, its multi-task predictions."""
            started = time.perf_counter()
            holder = try_build_lock(settings)
            if holder is None:  # a batch `bqx build`, or (--no-tail) the feature builder
                if tail and not busy[0]:
                    console.print(
                        "a batch `bqx build` holds the build lock: tail builds wait for it",
                        highlight=False,
                    )
                busy[0] = True
                return None
            if busy[0] and session is not None:
                session.forget_compiled()  # a batch build ran: compile the tail again
            busy[0] = False
            tail_from = None
            try:
                if tail:
                    # the oldest minute written since the last build: before the tail, a late bar
                    arrived = listener.take_oldest()
                    tail_from = tail_build(settings, conn, session=session, arrived_from=arrived)
                built = time.perf_counter()
                # the new minutes' embeddings and multi-task predictions (and any a crash
                # left behind), under the build lock: a batch build may not change the inputs
                stepped = _step_models(models, conn)
                newest = source.latest_minute(datetime.now(UTC))
            finally:
                holder.close()
            if tail_from is not None:
                console.print(
                    f"tail build from {tail_from:%Y-%m-%d %H:%M}: {built - started:.1f} s",
                    highlight=False,
                )
            if stepped is not None:
                console.print(
                    f"live models from {stepped.start:%Y-%m-%d %H:%M}: {stepped.embedded} "
                    f"embeddings, {stepped.predicted} multi-task predictions, "
                    f"{stepped.seconds:.2f} s",
                    highlight=False,
                )
            return newest

        try:
            steps = run_serve(
                service,
                look,
                max_steps,
                poll_seconds,
                wait=listener.wait,
                on_step=on_step,
                minutes_between=source.minutes_between,
                until=stop_after,
                prefetch=source.prefetched,
            )
        except KeyboardInterrupt:
            steps = None
            saved = service.flush(datetime.now(UTC))
            console.print(f"stopped: {saved} learners checkpointed")
    finally:
        signal.signal(signal.SIGTERM, previous)
        listener.close()
        store.close()
        conn.close()
        locks.close()
    if steps is not None:
        console.print(f"served {steps} minute steps")
    if backend == "postgres":
        _print_latency(settings)


def _prepare_tail(settings: Settings, conn: psycopg2.extensions.connection, session) -> None:
    """Compile the tail statements before the first look (DbtSession.prepare), under the
    build lock; skipped while a batch build holds it (its end makes serve compile anew)."""
    from bqx.dbt_runner import BuildScope
    from bqx.tail_build import try_build_lock

    began = time.perf_counter()
    holder = try_build_lock(settings)
    if holder is None:
        return
    try:
        prepared = session.prepare(conn, BuildScope())
    finally:
        holder.close()
    if prepared:
        console.print(
            f"tail statements compiled: {time.perf_counter() - began:.1f} s", highlight=False
        )


def _live_models(conn: psycopg2.extensions.connection, settings: Settings):
    """The trained autoencoder and multi-task nets for serve's model step (models_ml/live.py);
    one line per part it skips (nothing trained, other input columns)."""
    from models_ml.live import LiveModels

    models = LiveModels.open(conn, settings)
    for line in models.skipped:
        console.print(line, highlight=False)
    return models


def _step_models(models, conn: psycopg2.extensions.connection):
    """The model step at a look (None: nothing to do). Models trained or retrained since the
    last look (a manifest changed: two stat calls) are loaded first."""
    from models_ml.live import freeze_loaded_objects

    if models.refresh(conn):
        if models.encoder is not None:
            console.print("trained models loaded", highlight=False)
        for line in models.skipped:
            console.print(line, highlight=False)
        freeze_loaded_objects()  # what was just loaded, too
    return models.step(conn)


def _print_latency(settings: Settings) -> None:
    """The live panel's latency table (bqx/dashboard/live.py), for the hour before the
    newest prediction."""
    from bqx.dashboard.live import load_live_status

    conn = db.connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("select max(ts_utc) from bqx.online_predictions")
            newest = cur.fetchone()[0]
        status = load_live_status(conn, newest)
    finally:
        conn.close()
    rows = [p for p in status.latency if p.minutes]
    if not rows:
        return
    table = grid(
        f"live latency, the hour before {newest:%Y-%m-%d %H:%M} UTC",
        ["part", "minutes", "p50 s", "p99 s"],
    )
    for part in rows:
        table.add_row(
            part.part, f"{part.minutes:,}", f"{part.p50_seconds:.2f}", f"{part.p99_seconds:.2f}"
        )
    console.print(table)
