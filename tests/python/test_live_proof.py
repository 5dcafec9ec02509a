"""Issue 15's proof: batch = live. Two trading days of six generated pairs are fed minute by
minute with `bqx feed`'s code while `bqx online serve` (a process of its own, the CLI) wakes
on each commit, tail-builds, runs the model step with a trained autoencoder and multi-task
nets, and steps; the run has a weekend restart of serve, a 90-minute outage of the feed, one
late bar, which serve must notice by itself, and a kill -9 of serve between the model step's
work and its commit. Then every row and column of every table the tail build writes, and of
the embeddings and multi-task predictions, equals a full build of the same bars in a second
database (`bqx embed` / `bqx predict multitask` there), and the tail tables still do after a
partial `--months` build of the live database."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from bqx import db
from bqx.config import Settings
from bqx.dbt_runner import BUILD_BUSY, BUILD_LOCK, BuildScope, run_dbt
from bqx.ingest.feed import play, read_bars
from bqx.synth import SynthConfig, write_market
from models_ml.live import train_tiny_models

from .conftest import (
    MODEL_TABLES,
    TAIL_TABLES,
    assert_same_table,
    plant_lead_lag_relationships,
    table_rows,
)
from .serve_process import (
    holds,
    start_serve,
    stop_serve,
    until,
    wait_started,
    wait_stepped,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

PAIRS = ("EURUSD", "GBPUSD", "EURGBP", "USDJPY", "EURJPY", "GBPJPY")
START = date(2024, 1, 30)  # Tuesday; the market runs to Sunday night, across into February
SCOPE = {"train_end": "2024-01-31", "validation_end": "2024-02-01"}
# built in full before serve starts (all of the train period: the sister choice is the same)
LIVE_FROM = pd.Timestamp("2024-01-31 22:00", tz="UTC")
# the feed is down 90 minutes; windows restart after it (features again from 15:00 on)
OUTAGE = (pd.Timestamp("2024-02-01 03:00", tz="UTC"), pd.Timestamp("2024-02-01 04:30", tz="UTC"))
LATE = ("GBPUSD", pd.Timestamp("2024-02-01 18:34", tz="UTC"))  # fed after 20:00 was stepped
LATE_FED_AFTER = pd.Timestamp("2024-02-01 20:00", tz="UTC")
# serve is killed (SIGKILL) while its model step for these minutes waits to commit
# (the outage's windows are full again from 16:00: serve predicts again from then on)
KILLED = (pd.Timestamp("2024-02-01 17:00", tz="UTC"), pd.Timestamp("2024-02-01 17:05", tz="UTC"))
WEEKEND = pd.Timestamp("2024-02-03 00:00", tz="UTC")  # serve stops after Friday, restarts
SERVED_PAIR = "EURUSD"  # serve's learner (the tail build covers every pair)


def _wait_built(conn, serve: subprocess.Popen, minute: pd.Timestamp, log: Path) -> None:
    """Until a tail build that read the bars through `minute` finished (for minutes without
    features to step: windows restart after the weekend)."""
    query = (  # the grid holds the minute and no tail build is unfinished (dbt may read bars
        # committed after the build logged its newest one)
        "select (select max(ts_utc) from bqx.int_m1_grid_filled) >= %s and not exists"
        " (select 1 from bqx.live_tail_builds where finished_at is null)"
    )
    until(serve, log, lambda: holds(conn, query, minute.to_pydatetime()), f"build {minute}")
    time.sleep(1.0)  # its step of the minute (none: no features yet) and the next look


def _kill_in_model_step(
    live, serve: subprocess.Popen, settings, log: Path, chunk: pd.DataFrame
) -> subprocess.Popen:
    """Feed `chunk` while serve's model step cannot commit, kill serve there with SIGKILL and
    start it again. The step's watermark table is locked in SHARE mode: its reads pass, its
    insert of the watermark row (after the embeddings and predictions are written, before
    the commit) waits. The restarted serve must redo the step (checked by the tables'
    comparison with the batch build)."""
    locker = db.connect(settings)
    with locker.cursor() as cur:
        cur.execute("lock table bqx.live_model_steps in share mode")
    try:
        play(live, chunk, speed=0)
        waiting: list[int] = []

        def blocked() -> bool:
            with live, live.cursor() as cur:
                cur.execute(
                    "select pid from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query like 'insert into bqx.live_model_steps%%'"
                )
                waiting[:] = [row[0] for row in cur.fetchall()]
            return bool(waiting)

        until(serve, log, blocked, "reach its model step's commit")
        serve.send_signal(signal.SIGKILL)
        assert serve.wait(timeout=60) == -signal.SIGKILL
        with live, live.cursor() as cur:  # its backend, waiting for the lock, goes with it
            cur.execute("select pg_terminate_backend(pid) from unnest(%s) as pid", (waiting,))
            cur.execute("select max(ts_utc) from bqx.autoencoder_embeddings")
            assert cur.fetchone()[0] < KILLED[0].to_pydatetime()  # written, never committed
    finally:
        locker.rollback()
        locker.close()
    serve = start_serve(settings, log, (SERVED_PAIR,))
    wait_started(serve, log, chunk["ts_utc"].max(), 1)
    return serve


def _predictions(conn) -> pd.DataFrame:
    with conn, conn.cursor() as cur:
        cur.execute(
            "select pair, ts_utc, prediction, member_predictions::text, created_at"
            " from bqx.online_predictions order by pair, ts_utc"
        )
        return pd.DataFrame(cur.fetchall())


def test_two_days_fed_and_served_live_equal_a_batch_build(make_settings, tmp_path_factory):
    market = tmp_path_factory.mktemp("proof_market")
    write_market(SynthConfig(start=START, days=6, pairs=PAIRS, seed=21, outage_minutes=0), market)
    bars, _ = read_bars([market])
    in_outage = (bars["ts_utc"] >= OUTAGE[0]) & (bars["ts_utc"] < OUTAGE[1])
    bars = bars[~in_outage].reset_index(drop=True)  # the feed is down for 90 minutes
    late = (bars["pair"] == LATE[0]) & (bars["ts_utc"] == LATE[1])
    assert late.sum() == 1
    scope = BuildScope(**SCOPE)
    ts = bars["ts_utc"]
    live_days = ts[ts >= LIVE_FROM].dt.floor("D").nunique()
    assert (ts >= LIVE_FROM).sum() >= 2 * 1440 * len(PAIRS) * 0.9 and live_days >= 3

    # the batch database first: the models are trained on it (all the bars: Thursday
    # afternoon is the nets' test period) and its embeddings and predictions written
    batch_settings = make_settings("proof_batch")
    batch = db.connect(batch_settings)
    plant_lead_lag_relationships(batch)
    play(batch, bars, speed=0)
    assert run_dbt(batch_settings, ["--quiet", "seed"]) == 0
    assert run_dbt(batch_settings, ["--quiet", "run"], scope=scope) == 0
    train_tiny_models(batch, batch_settings, PAIRS)

    live_url = make_settings("proof_live").database_url
    settings = Settings(home=batch_settings.home, database_url=live_url)  # the same models
    live = db.connect(settings)
    plant_lead_lag_relationships(live)
    play(live, bars[ts < LIVE_FROM], speed=0)
    assert run_dbt(settings, ["--quiet", "seed"]) == 0
    assert run_dbt(settings, ["--quiet", "run"], scope=scope) == 0

    log = tmp_path_factory.mktemp("proof_serve") / "serve.log"
    serve = start_serve(settings, log, (SERVED_PAIR,))
    try:
        wait_started(serve, log, LIVE_FROM - pd.Timedelta(minutes=1), 1)
        # Thursday and Friday, minute by minute as fast as the database takes them; serve is
        # killed once in its model step; the late bar is held back until serve has stepped
        # past its minute
        play(live, bars[(ts >= LIVE_FROM) & (ts < KILLED[0])], speed=0)
        wait_stepped(live, serve, KILLED[0] - pd.Timedelta(minutes=1), log, SERVED_PAIR)
        killed = bars[(ts >= KILLED[0]) & (ts < KILLED[1])]
        serve = _kill_in_model_step(live, serve, settings, log, killed)
        before_late = (ts >= KILLED[1]) & (ts < LATE_FED_AFTER) & ~late
        play(live, bars[before_late], speed=0)
        wait_stepped(live, serve, LATE_FED_AFTER - pd.Timedelta(minutes=1), log, SERVED_PAIR)
        stored_before = _predictions(live)
        play(live, bars[late], speed=0)
        play(live, bars[(ts >= LATE_FED_AFTER) & (ts < WEEKEND)], speed=0)
        served = ts[bars["pair"] == SERVED_PAIR]  # its newest minute of the week
        wait_stepped(live, serve, served[served < WEEKEND].max(), log, SERVED_PAIR)
        _wait_built(live, serve, ts[ts < WEEKEND].max(), log)
        stop_serve(serve, log)
        # the weekend: serve restarts, then Sunday night's minutes arrive
        serve = start_serve(settings, log, (SERVED_PAIR,))
        wait_started(serve, log, ts[ts < WEEKEND].max(), 2)
        play(live, bars[ts >= WEEKEND], speed=0)
        _wait_built(live, serve, ts.max(), log)
        stop_serve(serve, log)
    finally:
        if serve.poll() is None:
            serve.kill()
    out = log.read_text()
    # serve noticed the late bar by itself: a tail from an hour before its minute
    late_tail = f"tail build from {LATE[1] - pd.Timedelta(minutes=60):%Y-%m-%d %H:%M}"
    assert late_tail in out, out[-3000:]
    assert out.count("tail build from") >= 4, out[-3000:]
    # predictions already stored stay exactly as they were made
    stored_after = _predictions(live)
    pd.testing.assert_frame_equal(stored_after.iloc[: len(stored_before)], stored_before)
    assert stored_after[1].nunique() == len(stored_after)  # one per stepped minute

    expected = {}
    for table in TAIL_TABLES:
        expected[table] = table_rows(batch, table)
        # the comparison covers the live span: the grid reaches the newest bar; the other
        # tables reach at least Friday (Sunday night's new segment is shorter than the
        # 630-minute windows, so features rightly start again only on Monday)
        newest = ts.max() if table == "int_m1_grid_filled" else LATE_FED_AFTER
        assert expected[table]["ts_utc"].max() >= newest - pd.Timedelta(minutes=1), table
        assert_same_table(table_rows(live, table), expected[table], table)
    # the embeddings and multi-task predictions serve's model step wrote: every minute from
    # its first tail build (Wednesday 22:00, or where a pair's tail started before) to the
    # newest with features, as `bqx embed` / `bqx predict multitask` wrote them in batch
    # (the history before is `bqx embed`'s job, not run on the live database)
    for table in MODEL_TABLES:
        found = table_rows(live, table)
        first = found["ts_utc"].min()
        assert LIVE_FROM - pd.Timedelta(minutes=60) <= first <= LIVE_FROM, (table, first)
        batch_rows = table_rows(batch, table)
        batch_rows = batch_rows[batch_rows["ts_utc"] >= first].reset_index(drop=True)
        assert batch_rows["ts_utc"].max() >= LATE_FED_AFTER, table  # through Friday
        assert_same_table(found, batch_rows, table)

    # a partial build of February on the live database changes nothing
    months = BuildScope.parse(months="2024-02", **SCOPE)
    assert run_dbt(settings, ["--quiet", "run"], scope=months) == 0
    for table in TAIL_TABLES:
        assert_same_table(table_rows(live, table), expected[table], table)
    live.close()
    batch.close()


# three pairs built (each pair's cross-pair features need 2 sisters sharing a currency: with
# two pairs ml_cross_pair_features is empty and serve has no input to predict from), two served
CRASH_PAIRS = ("EURUSD", "GBPUSD", "EURGBP")
CRASH_SERVED = ("EURUSD", "GBPUSD")
CRASH_START = date(2024, 1, 30)
CRASH_BUILT = pd.Timestamp("2024-01-30 12:00", tz="UTC")  # windows are full from 10:30 on
CRASH_CHUNKS = [pd.Timestamp(t, tz="UTC") for t in ("2024-01-30 14:07", "2024-01-30 15:30")]


def _learned(conn) -> tuple[pd.DataFrame, set]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "select pair, ts_utc, prediction, member_predictions::text, weights::text, learned_at"
            " from bqx.online_predictions order by pair, ts_utc"
        )
        rows = pd.DataFrame(cur.fetchall())
    learned = {(pair, ts) for pair, ts, *_, at in rows.itertuples(index=False) if at is not None}
    return rows.iloc[:, :5], learned


def _wait_chunk_stepped(conn, serve, market_bars, end: pd.Timestamp, log: Path) -> pd.Timestamp:
    """Until serve stepped each pair's newest minute before `end`; returns the newest one."""
    newest = []
    for pair in CRASH_SERVED:
        own = market_bars.loc[(market_bars["pair"] == pair) & (market_bars["ts_utc"] < end)]
        newest.append(own["ts_utc"].max())
        wait_stepped(conn, serve, newest[-1], log, pair)
    return max(newest)


def _crash_base(make_settings, market_bars, label: str):
    """A database of the crash market built in full before CRASH_BUILT."""
    settings = make_settings(label)
    conn = db.connect(settings)
    ts = market_bars["ts_utc"]
    play(conn, market_bars[ts < CRASH_BUILT], speed=0)
    assert run_dbt(settings, ["--quiet", "seed"]) == 0
    assert run_dbt(settings, ["--quiet", "run"], scope=BuildScope(**SCOPE)) == 0
    return settings, conn


def _feed_whole(settings, conn, bars: pd.DataFrame) -> None:
    """Feed `bars` while the build lock is held, as a batch build holds it: serve's next look
    after it builds them in one tail, in both runs. Features built by tails starting at other
    minutes are only promised equal to 1e-9 relative (the proof's tolerance), and this test
    compares predictions exactly; without the lock a serve whose tails are fast
    (compiled at its start) splits the chunk where its timing falls (seen: 12:00-12:22 in one
    run, 12:00-12:23 in the other, and predictions 1 ulp apart from 13:28 on)."""
    with db.advisory_locks(settings, BUILD_LOCK, ["all"], BUILD_BUSY):
        play(conn, bars, speed=0)


def _serve_run(make_settings, market_bars, tmp: Path, label: str, kill: bool):
    """Base build, serve started, two chunks fed (serve stepping each minute); with `kill`,
    serve is killed with SIGKILL after the first chunk, learned but not checkpointed, and
    started again."""
    settings, conn = _crash_base(make_settings, market_bars, label)
    ts = market_bars["ts_utc"]
    log = tmp / f"{label}.log"
    serve = start_serve(settings, log, CRASH_SERVED)
    last_built = CRASH_BUILT - pd.Timedelta(minutes=1)
    try:
        wait_started(serve, log, last_built, 1)
        _feed_whole(settings, conn, market_bars[(ts >= CRASH_BUILT) & (ts < CRASH_CHUNKS[0])])
        last = _wait_chunk_stepped(conn, serve, market_bars, CRASH_CHUNKS[0], log)
        if kill:
            with conn, conn.cursor() as cur:  # learned in memory, not all checkpointed
                cur.execute("select max(ts_utc) from bqx.online_checkpoints")
                assert cur.fetchone()[0] < last.to_pydatetime()
            serve.send_signal(signal.SIGKILL)
            assert serve.wait(timeout=60) == -signal.SIGKILL
            serve = start_serve(settings, log, CRASH_SERVED)
            wait_started(serve, log, last, 2)
        chunk = (ts >= CRASH_CHUNKS[0]) & (ts < CRASH_CHUNKS[1])
        _feed_whole(settings, conn, market_bars[chunk])
        _wait_chunk_stepped(conn, serve, market_bars, CRASH_CHUNKS[1], log)
        stop_serve(serve, log)
    finally:
        if serve.poll() is None:
            serve.kill()
    result = _learned(conn)
    conn.close()
    return result


@pytest.fixture(scope="module")
def crash_bars(tmp_path_factory) -> pd.DataFrame:
    market = tmp_path_factory.mktemp("crash_market")
    write_market(
        SynthConfig(start=CRASH_START, days=1, pairs=CRASH_PAIRS, seed=3, outage_minutes=0), market
    )
    return read_bars([market])[0]


def test_serve_killed_between_learning_and_checkpoint_ends_as_an_uninterrupted_run(
    make_settings, tmp_path_factory, crash_bars
):
    """kill -9 of `bqx online serve` after it learned minutes its checkpoint (every 15
    minutes) does not hold yet, then a restart: the learned (pair, ts) and every prediction
    equal those of a run that was never killed."""
    bars = crash_bars
    tmp = tmp_path_factory.mktemp("crash_serve")
    reference, reference_learned = _serve_run(make_settings, bars, tmp, "crash_ref", kill=False)
    crashed, crashed_learned = _serve_run(make_settings, bars, tmp, "crash_kill", kill=True)
    assert len(reference_learned) > 2 * 60
    assert crashed_learned == reference_learned
    pd.testing.assert_frame_equal(crashed, reference)


def test_serve_skips_tail_builds_while_a_batch_build_holds_the_lock(
    make_settings, tmp_path_factory, crash_bars
):
    """A batch `bqx build` holds the build lock: serve's tail builds wait (one line says so)
    and the grid stays where it was; once the lock is free the next wake catches up."""
    settings, conn = _crash_base(make_settings, crash_bars, "lock")
    ts = crash_bars["ts_utc"]
    log = tmp_path_factory.mktemp("lock_serve") / "serve.log"
    fed = crash_bars[(ts >= CRASH_BUILT) & (ts < CRASH_BUILT + pd.Timedelta(minutes=10))]
    grid_max = "select max(ts_utc) from bqx.int_m1_grid_filled"
    with db.advisory_locks(settings, BUILD_LOCK, ["all"], BUILD_BUSY):  # a batch build
        serve = start_serve(settings, log, CRASH_SERVED)
        try:
            busy = "holds the build lock"
            until(serve, log, lambda: busy in log.read_text(), "see the lock")
            play(conn, fed, speed=0)
            time.sleep(6)  # serve wakes on each minute's bars and at its 2 s poll
            with conn, conn.cursor() as cur:
                cur.execute(grid_max)
                assert cur.fetchone()[0] == (CRASH_BUILT - pd.Timedelta(minutes=1)).to_pydatetime()
            assert log.read_text().count(busy) == 1 and "tail build from" not in log.read_text()
        except BaseException:
            serve.kill()
            raise
    try:  # released: the next wake (its poll, at most 2 s) builds the ten minutes
        until(serve, log, lambda: "tail build from" in log.read_text(), "build after the lock")
        _wait_built(conn, serve, fed["ts_utc"].max(), log)
        wait_stepped(conn, serve, fed["ts_utc"].max(), log, CRASH_SERVED[0])
        stop_serve(serve, log)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert "tail build from 2024-01-30 12:00" in log.read_text()
    conn.close()


@pytest.mark.parametrize(
    ("payload", "span"),
    [
        ("2024-02-01T18:34:00Z", ("2024-02-01 18:34", "2024-02-01 18:34")),
        ("2024-02-01T18:34:00Z/2024-02-01T20:01:00Z", ("2024-02-01 18:34", "2024-02-01 20:01")),
        ("not a minute", None),
        ("2024-02-01T18:34:00Z/x", None),
    ],
)
def test_bars_payload_names_the_oldest_and_newest_minute(payload, span):
    from bqx_online.wakeup import parse_payload

    parsed = parse_payload(payload)
    if span is None:
        assert parsed is None
    else:
        assert parsed == tuple(pd.Timestamp(s, tz="UTC").to_pydatetime() for s in span)


def test_late_tail_from_reaches_back_to_where_the_grid_fills():
    from bqx.tail_build import late_tail_from

    assert late_tail_from(None) is None
    late = datetime.fromisoformat("2024-02-01T18:34:00+00:00")
    assert late_tail_from(late) == datetime.fromisoformat("2024-02-01T17:34:00+00:00")
