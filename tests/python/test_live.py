"""The live path: `bqx feed` plays bars minute by minute, the raw layer's trigger announces
each committed minute on `bqx_bars`, and `bqx online serve` wakes on it."""

from __future__ import annotations

import select
import time
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from bqx import db
from bqx.cli import app
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.errors import BqxUserError
from bqx.ingest.feed import insert_minute, play, read_bars
from bqx.ingest.loader import ingest_files
from bqx.sql import ensure_raw_schema
from bqx.synth import SynthConfig, write_market
from bqx.tail_build import DbtSession, tail_build

from .conftest import TAIL_TABLES, assert_same_table, plant_lead_lag_relationships, table_rows

FEED_PAIRS = ("EURUSD", "GBPUSD", "USDJPY")
FEED_START = date(2024, 1, 29)  # a Monday


@pytest.fixture(scope="module")
def feed_market(tmp_path_factory):
    out = tmp_path_factory.mktemp("feed_market")
    write_market(SynthConfig(start=FEED_START, days=1, pairs=FEED_PAIRS, seed=5), out)
    return out


@pytest.fixture(scope="module")
def feed_db(make_settings):
    settings = make_settings("feed")
    conn = db.connect(settings)
    with conn:
        ensure_raw_schema(conn)
    yield settings, conn
    conn.close()


def _truncate(conn) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("truncate raw.m1_bars, raw.m1_bars_rejected, raw.ingest_log")


def _bars(conn) -> pd.DataFrame:
    with conn, conn.cursor() as cur:
        cur.execute(
            "select pair, ts_utc, open, high, low, close, volume, source "
            "from raw.m1_bars order by pair, ts_utc"
        )
        return pd.DataFrame(
            cur.fetchall(),
            columns=["pair", "ts_utc", "open", "high", "low", "close", "volume", "source"],
        )


def test_feed_commits_minute_by_minute_and_equals_what_ingest_loads(
    feed_db, make_settings, feed_market
):
    settings, conn = feed_db
    _truncate(conn)
    bars, _ = read_bars([feed_market])
    observer = db.connect(settings)  # another session: sees only what was committed
    seen: list[tuple[datetime, int, int]] = []

    def on_minute(done: int, total: int, ts: datetime) -> None:
        if done % 97 == 1 or done == total:  # a sample of minutes (each check is a query)
            with observer, observer.cursor() as cur:
                cur.execute("select max(ts_utc), count(distinct ts_utc), count(*) from raw.m1_bars")
                newest, minutes, rows = cur.fetchone()
            seen.append((ts, done, rows))
            assert newest == ts and minutes == done
            assert rows == int((bars["ts_utc"] <= pd.Timestamp(ts)).sum())

    result = play(conn, bars, speed=0, on_minute=on_minute)
    observer.close()
    assert result.minutes == bars["ts_utc"].nunique() and result.bars == len(bars)
    assert result.duplicates == 0 and len(seen) > 10

    reference = make_settings("feed_ref")
    ref = db.connect(reference)
    ingest_files(ref, [feed_market])
    expected = _bars(ref)
    ref.close()
    pd.testing.assert_frame_equal(_bars(conn), expected, check_exact=True)

    again = play(conn, bars.head(len(FEED_PAIRS) * 5), speed=0)
    assert again.bars == 0 and again.duplicates == len(FEED_PAIRS) * 5


def test_feed_keeps_the_market_clock_times_the_speed(feed_db, feed_market):
    _, conn = feed_db
    _truncate(conn)
    bars, _ = read_bars([feed_market], pairs=("EURUSD",))
    bars = bars.head(4)
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    play(conn, bars, speed=60, sleep=sleep, clock=lambda: now[0])
    # one market minute is one wall-clock second at speed 60
    assert slept == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(BqxUserError, match="speed"):
        play(conn, bars, speed=-1)


def test_each_committed_minute_is_announced_once_on_bqx_bars(feed_db, feed_market):
    settings, conn = feed_db
    _truncate(conn)
    listener = db.connect(settings)
    listener.autocommit = True
    with listener.cursor() as cur:
        cur.execute("listen bqx_bars")
    bars, _ = read_bars([feed_market])
    minutes = sorted(bars["ts_utc"].unique())[:5]
    play(conn, bars[bars["ts_utc"].isin(minutes)], speed=0)
    play(conn, bars[bars["ts_utc"].isin(minutes[:2])], speed=0)  # nothing new: no notice
    later = sorted(bars["ts_utc"].unique())[5:8]
    with conn, conn.cursor() as cur:  # several minutes in one statement: 'oldest/newest'
        insert_minute(cur, bars[bars["ts_utc"].isin(later)])
        cur.execute(  # a correction by update announces its minute too
            "update raw.m1_bars set close = close where ts_utc = %s", (minutes[1],)
        )
    iso = [pd.Timestamp(m).strftime("%Y-%m-%dT%H:%M:%SZ") for m in [*minutes, *later]]
    expected = [*iso[:5], f"{iso[5]}/{iso[7]}", iso[1]]
    # NOTIFY reaches the listening backend asynchronously after commit: under load the
    # last transaction's notices can come after the first select() wakes (CI, load 4+),
    # so keep reading until the expected count arrived or 10 s passed.
    deadline = time.monotonic() + 10
    payloads: list[str] = []
    while len(payloads) < len(expected) and time.monotonic() < deadline:
        select.select([listener], [], [], 0.5)
        listener.poll()
        payloads = [n.payload for n in listener.notifies if n.channel == "bqx_bars"]
    select.select([listener], [], [], 0.5)  # one more look: an extra notice must show
    listener.poll()
    payloads = [n.payload for n in listener.notifies if n.channel == "bqx_bars"]
    listener.close()
    assert payloads == expected
    with conn, conn.cursor() as cur:  # the DDL is idempotent: the trigger exists once
        ensure_raw_schema(conn)
        cur.execute("select count(*) from pg_trigger where tgname = 'm1_bars_notify'")
        assert cur.fetchone()[0] == 1


def test_cli_feed_synth_prints_a_summary(feed_db, monkeypatch):
    settings, conn = feed_db
    _truncate(conn)
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    args = ["feed", "--synth", "--pairs", "EURUSD,USDCAD", "--start", "2024-01-29", "--days", "1"]
    result = CliRunner().invoke(app, [*args, "--speed", "0"])
    assert result.exit_code == 0, result.output
    assert "bars inserted" in result.stdout and "minutes/s" in result.stdout
    with conn, conn.cursor() as cur:
        cur.execute("select count(distinct pair), min(ts_utc) from raw.m1_bars")
        assert cur.fetchone() == (2, datetime(2024, 1, 29, tzinfo=UTC))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["feed"], "either --from DIR or --synth"),
        (["feed", "--synth", "--from", "x"], "either --from DIR or --synth"),
        (["feed", "--from", "nope"], "no such file"),
        (["feed", "--synth", "--speed", "-2"], "--speed"),
        (["feed", "--synth", "--pairs", "EURXXX"], "unknown pair"),
        (["feed", "--synth", "--start", "2024-13-01"], "bad date"),
        (["build", "--tail-from", "2024-13-01 00:00"], "bad --tail-from"),
        (["build", "--tail", "--months", "2024-01"], "no months/pairs"),
    ],
)
def test_cli_feed_and_tail_user_errors_are_one_line(feed_db, monkeypatch, tmp_path, args, message):
    settings, _ = feed_db
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output


def test_serve_listener_wakes_when_bars_commit_not_at_its_timeout(feed_db, feed_market):
    import threading
    import time

    from bqx_online.wakeup import BarsListener

    settings, conn = feed_db
    _truncate(conn)
    bars, _ = read_bars([feed_market], pairs=("EURUSD",))
    first = bars["ts_utc"].iloc[0]
    listener = BarsListener(db.connect(settings))
    assert listener.wait(0.2) is None  # nothing committed: the timeout passes
    feeder = threading.Timer(0.5, play, args=(conn, bars.head(1)), kwargs={"speed": 0})
    started = time.monotonic()
    feeder.start()
    woke = listener.wait(30)
    waited = time.monotonic() - started
    feeder.join()
    listener.close()
    assert woke == first.to_pydatetime()
    assert 0.4 < waited < 10  # woken by the commit, long before the 30 s timeout


# ---------------------------------------------------------------------------- tail build
TAIL_PAIRS = ("EURUSD", "GBPUSD", "EURGBP", "USDJPY")
TAIL_START = date(2024, 1, 30)  # Tuesday: three trading days, crossing into February
TAIL_SCOPE = {"train_end": "2024-01-31", "validation_end": "2024-02-01"}
# the first chunk (all of the train period) is built in full, each later one by a tail build
TAIL_CUTS = [
    pd.Timestamp("2024-01-31 03:00", tz="UTC"),
    pd.Timestamp("2024-01-31 09:17", tz="UTC"),
    pd.Timestamp("2024-01-31 15:42", tz="UTC"),
    pd.Timestamp("2024-02-01 02:10", tz="UTC"),
]
TAIL_LATE_BAR = pd.Timestamp("2024-01-31 12:34", tz="UTC")  # inside the second tail chunk


def test_tail_builds_after_each_fed_chunk_equal_one_full_build(make_settings, tmp_path_factory):
    """Feed three trading days of four pairs in chunks (the first built in full, each later
    one appended by a tail build: the first tail starts inside the market's 90-minute outage,
    one crosses into February), with one bar arriving late, then compare every row and column
    of the grid, the series, the base, cross-pair and target tables with a full build of the
    same bars in a second database."""
    market = tmp_path_factory.mktemp("tail_market")
    write_market(SynthConfig(start=TAIL_START, days=3, pairs=TAIL_PAIRS, seed=13), market)
    bars, _ = read_bars([market])
    scope = BuildScope(**TAIL_SCOPE)

    live_settings = make_settings("tail_live")
    live = db.connect(live_settings)
    plant_lead_lag_relationships(live)
    play(live, bars[bars["ts_utc"] < TAIL_CUTS[0]], speed=0)
    assert run_dbt(live_settings, ["--quiet", "seed"]) == 0
    assert run_dbt(live_settings, ["--quiet", "run"], scope=scope) == 0
    # one bar arrives late: withheld from its chunk (the grid forward-fills the minute
    # meanwhile), fed after the next chunk was built, then recomputed from its minute
    late = (bars["pair"] == "EURGBP") & (bars["ts_utc"] == TAIL_LATE_BAR)
    assert late.sum() == 1
    session = DbtSession(live_settings)  # serve's long-lived dbt; the late bar: a dbt process
    starts = []
    for i, (low, high) in enumerate(zip(TAIL_CUTS, [*TAIL_CUTS[1:], None], strict=True)):
        in_chunk = (bars["ts_utc"] >= low) & ((bars["ts_utc"] < high) if high else True)
        play(live, bars[in_chunk & ~late], speed=0)
        starts.append(tail_build(live_settings, live, scope=scope, session=session))
        if i == 2:
            play(live, bars[late], speed=0)
            late_start = tail_build(live_settings, live, TAIL_LATE_BAR.to_pydatetime(), scope)
            assert late_start == TAIL_LATE_BAR
    assert all(s is not None for s in starts)
    assert tail_build(live_settings, live, scope=scope) is None  # nothing new: nothing run

    batch_settings = make_settings("tail_batch")
    batch = db.connect(batch_settings)
    plant_lead_lag_relationships(batch)
    ingest_files(batch, [market])
    assert run_dbt(batch_settings, ["--quiet", "seed"]) == 0
    assert run_dbt(batch_settings, ["--quiet", "run"], scope=scope) == 0
    for table in TAIL_TABLES:
        expected = table_rows(batch, table)
        assert len(expected) > 0, table
        assert_same_table(table_rows(live, table), expected, table)
    live.close()
    batch.close()


GAP_PAIRS = ("EURUSD", "GBPUSD", "EURGBP", "USDJPY")  # EURGBP: a sister of both EURUSD, GBPUSD
GAP_CUT = pd.Timestamp("2024-01-31 09:00", tz="UTC")  # built in full before, fed from here


def _minute_rows(conn, table: str, ts: pd.Timestamp) -> set[str]:
    with conn, conn.cursor() as cur:
        cur.execute(f"select pair from bqx.{table} where ts_utc = %s", (ts.to_pydatetime(),))
        return {row[0] for row in cur.fetchall()}


def _grid_end(conn, pair: str) -> tuple[datetime, bool, float]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "select ts_utc, is_filled, close from bqx.int_m1_grid_filled where pair = %s"
            " order by ts_utc desc limit 1",
            (pair,),
        )
        return cur.fetchone()


def _assert_equal_to_batch(live, batch_settings, batch, bars: pd.DataFrame, scope) -> None:
    """Feed `bars` (those not there yet) to the batch database, build it in full, and
    compare every tail-built table with the live one."""
    play(batch, bars, speed=0)
    assert run_dbt(batch_settings, ["--quiet", "run"], scope=scope) == 0
    for table in TAIL_TABLES:
        expected = table_rows(batch, table)
        assert len(expected) > 0, table
        assert_same_table(table_rows(live, table), expected, table)


def test_a_missing_bar_leaves_no_pair_without_features_and_live_equals_batch(
    make_settings, tmp_path_factory
):
    """One pair's bar missing at the newest minute: the grid fills that minute from its last
    close (the price known then), so every pair has its features at the minute, its sisters'
    correlations included, and the tables equal a batch build of the same bars (the trailing
    edge of a batch build is the live state). The pair's next bar settles the fill: the next
    tail starts after the minute. A pair silent for more than an hour loses its trailing fills
    again (the tail starts after its last bar), as a batch build of those bars has none."""
    market = tmp_path_factory.mktemp("gap_market")
    config = SynthConfig(start=TAIL_START, days=2, pairs=GAP_PAIRS, seed=21, outage_minutes=0)
    write_market(config, market)
    bars, _ = read_bars([market])
    scope = BuildScope(**TAIL_SCOPE)
    minute = pd.Timedelta(minutes=1)
    present = bars.groupby("ts_utc")["pair"].nunique()
    full = present[present == len(GAP_PAIRS)].index
    # m: the first minute after the cut with every pair's bar at m - 1, m and m + 1
    m = next(
        t for t in full if t >= GAP_CUT + 5 * minute and t - minute in full and t + minute in full
    )
    missing = (bars["pair"] == "EURGBP") & (bars["ts_utc"] == m)
    silent_from, silent_to = m + 2 * minute, m + 62 * minute  # USDJPY: no bars, 61 minutes
    silent = (bars["pair"] == "USDJPY") & bars["ts_utc"].between(silent_from, silent_to)
    end = m + 90 * minute
    kept = bars[~missing & ~silent & (bars["ts_utc"] <= end)]

    live_settings = make_settings("gap_live")
    live = db.connect(live_settings)
    plant_lead_lag_relationships(live)
    play(live, kept[kept["ts_utc"] < GAP_CUT], speed=0)
    assert run_dbt(live_settings, ["--quiet", "seed"]) == 0
    assert run_dbt(live_settings, ["--quiet", "run"], scope=scope) == 0
    session = DbtSession(live_settings)

    def feed_and_build(low: pd.Timestamp, high: pd.Timestamp) -> datetime | None:
        play(live, kept[kept["ts_utc"].between(low, high)], speed=0)
        return tail_build(live_settings, live, scope=scope, session=session)

    feed_and_build(GAP_CUT, m - minute)
    # m: every pair but EURGBP has its bar
    assert feed_and_build(m, m) == m
    ts, is_filled, close = _grid_end(live, "EURGBP")
    before = bars[(bars["pair"] == "EURGBP") & (bars["ts_utc"] == m - minute)]
    assert (pd.Timestamp(ts), is_filled, close) == (m, True, before["close"].item())
    for table in ("sister_correlation", "ml_feature_matrix", "ml_cross_pair_features"):
        assert _minute_rows(live, table, m) == set(GAP_PAIRS), table
    batch_settings = make_settings("gap_batch")
    batch = db.connect(batch_settings)
    plant_lead_lag_relationships(batch)
    assert run_dbt(batch_settings, ["--quiet", "seed"]) == 0
    _assert_equal_to_batch(live, batch_settings, batch, kept[kept["ts_utc"] <= m], scope)

    # EURGBP's next bar settles the fill: the tail starts after m
    assert feed_and_build(m + minute, m + minute) == m + minute
    assert tail_build(live_settings, live, scope=scope, session=session) is None
    # USDJPY stays silent: filled up to the newest minute while that is within 60 minutes
    assert feed_and_build(silent_from, silent_to - minute) == m + 2 * minute
    ts, is_filled, _ = _grid_end(live, "USDJPY")
    assert (pd.Timestamp(ts), is_filled) == (silent_to - minute, True)
    # 61 minutes after its last bar: no fill (its next bar would be a gap), the rows go
    assert feed_and_build(silent_to, silent_to) == m + 2 * minute
    ts, is_filled, _ = _grid_end(live, "USDJPY")
    assert (pd.Timestamp(ts), is_filled) == (m + minute, False)
    feed_and_build(silent_to + minute, end)
    _assert_equal_to_batch(live, batch_settings, batch, kept, scope)
    live.close()
    batch.close()
