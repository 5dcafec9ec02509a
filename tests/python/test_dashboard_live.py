"""Issue 15, item 5: the dashboard's live panel (feed age, "feed stale" banner, latency).

Bars go into raw.m1_bars through the real trigger, which logs each statement in
raw.bar_arrivals; the arrival times, the predictions' store times, the tail builds' and the
handler steps' seconds are then planted, so the panel's p50 / p99 can be checked against numpy
(percentile_cont = numpy's linear percentile) on exactly the rows that belong in the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg2.extras
import pytest

from bqx import db
from bqx.dashboard.data import DashboardConfig, load_dashboard_data
from bqx.dashboard.live import fx_market_open, load_live_status
from bqx.dashboard.render import render_page
from bqx.sql import apply_ddl, ensure_raw_schema

PAIRS = ("EURUSD", "USDJPY")
NEWEST = datetime(2024, 2, 7, 15, 0, tzinfo=UTC)  # a Wednesday; the newest prediction
MINUTES = 90  # fed one by one; the panel's hour holds the last 60


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        # winter (EST, UTC-5): the week turns at 22:00 UTC
        (datetime(2026, 11, 27, 21, 59, tzinfo=UTC), True),  # Friday 16:59 New York
        (datetime(2026, 11, 27, 22, 0, tzinfo=UTC), False),  # Friday 17:00
        (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 11, 29, 21, 59, tzinfo=UTC), False),  # Sunday 16:59
        (datetime(2026, 11, 29, 22, 0, tzinfo=UTC), True),  # Sunday 17:00
        # summer (EDT, UTC-4): at 21:00 UTC
        (datetime(2026, 7, 10, 20, 59, tzinfo=UTC), True),
        (datetime(2026, 7, 10, 21, 0, tzinfo=UTC), False),
        (datetime(2026, 7, 12, 21, 0, tzinfo=UTC), True),
        (datetime(2026, 7, 15, 3, 0, tzinfo=UTC), True),  # a Wednesday night
    ],
)
def test_fx_market_hours_follow_new_york_time(at, is_open):
    assert fx_market_open(at) is is_open


@pytest.fixture(scope="module")
def live_db(make_settings):
    """A database where a feed wrote MINUTES minutes one statement each, serve built and
    stepped each, plus one bulk file ingest and one late correction (both not live minutes)."""
    settings = make_settings("dashboard_live")
    conn = db.connect(settings)
    rng = np.random.default_rng(11)
    minutes = [NEWEST - timedelta(minutes=MINUTES - 1 - i) for i in range(MINUTES)]
    arrived = [m + timedelta(seconds=2) for m in minutes]
    latency = rng.lognormal(0.3, 0.6, MINUTES)  # seconds from arrival to stored predictions
    tail = rng.lognormal(0.0, 0.5, MINUTES)
    parts = rng.lognormal(-2.0, 0.4, (MINUTES, 3))
    with conn, conn.cursor() as cur:
        ensure_raw_schema(conn)
        for family in ("online", "live"):
            apply_ddl(cur, family)
        bulk = [NEWEST - timedelta(days=3, minutes=i) for i in range(30)]
        _insert_bars(cur, bulk)  # a file ingest: one statement, many minutes
        for minute in minutes:
            _insert_bars(cur, [minute])  # the feed: one statement per minute
        cur.execute("update raw.m1_bars set close = close + 1e-5 where ts_utc = %s", (minutes[-5],))
        cur.execute("select arrival_id, newest_minute from raw.bar_arrivals order by arrival_id")
        arrivals = cur.fetchall()
        assert len(arrivals) == 1 + MINUTES + 1  # bulk, one per minute, the late correction
        for (arrival_id, minute), at in zip(arrivals[1:-1], arrived, strict=True):
            assert minute == at - timedelta(seconds=2)
            cur.execute(
                "update raw.bar_arrivals set arrived_at = %s where arrival_id = %s",
                (at, arrival_id),
            )
        cur.execute(  # the file was ingested three days before
            "update raw.bar_arrivals set arrived_at = %s where arrival_id = %s",
            (NEWEST - timedelta(days=3), arrivals[0][0]),
        )
        late_at = NEWEST + timedelta(minutes=3)  # after its minute's predictions were stored
        cur.execute(
            "update raw.bar_arrivals set arrived_at = %s where arrival_id = %s",
            (late_at, arrivals[-1][0]),
        )
        rows = []
        for minute, at, seconds in zip(minutes, arrived, latency, strict=True):
            for k, pair in enumerate(PAIRS):  # the minute's last prediction counts
                stored = at + timedelta(seconds=float(seconds) * (0.5 if k == 0 else 1.0))
                rows.append((pair, minute, 60, 0.0, "{}", "{}", stored))
        psycopg2.extras.execute_values(
            cur,
            "insert into bqx.online_predictions (pair, ts_utc, horizon_minutes, prediction, "
            "member_predictions, weights, created_at) values %s",
            rows,
        )
        psycopg2.extras.execute_values(
            cur,
            "insert into bqx.live_tail_builds (tail_from, newest_bar, finished_at, seconds) "
            "values %s",
            [(m, m, m, float(s)) for m, s in zip(minutes, tail, strict=True)],
        )
        psycopg2.extras.execute_values(
            cur,
            "insert into bqx.online_steps (ts_utc, pairs, seconds, predict_seconds, "
            "learn_seconds, checkpoint_seconds) values %s",
            [
                (m, len(PAIRS), float(p.sum()), *map(float, p))
                for m, p in zip(minutes, parts, strict=True)
            ],
        )
    yield settings, conn, {"latency": latency, "tail": tail, "parts": parts, "last": late_at}
    conn.close()


def _insert_bars(cur, minutes: list[datetime]) -> None:
    psycopg2.extras.execute_values(
        cur,
        "insert into raw.m1_bars (pair, ts_utc, open, high, low, close, source) values %s",
        [(pair, m, 1.1, 1.2, 1.0, 1.1, "test") for m in minutes for pair in PAIRS],
    )


def _oracle(values: np.ndarray) -> tuple[int, float, float]:
    """What the panel must show for the last hour's values (the window holds 60 minutes)."""
    window = np.asarray(values)[-60:]
    return len(window), np.percentile(window, 50), np.percentile(window, 99)


def test_latency_percentiles_equal_numpy_on_the_hour_before_the_newest_prediction(live_db):
    _, conn, planted = live_db
    status = load_live_status(conn, NEWEST, now_utc=NEWEST + timedelta(minutes=4))
    by_part = {p.part: p for p in status.latency}
    parts = planted["parts"]
    expected = {
        "end to end": planted["latency"],  # the minute's slower pair (k = 1)
        "tail build": planted["tail"],
        "handler step: predict": parts[:, 0],
        "handler step: learn": parts[:, 1],
        "handler step: checkpoints": parts[:, 2],
        "handler step: total": parts.sum(axis=1),
    }
    assert len(by_part) == len(expected)
    for prefix, values in expected.items():
        (part,) = [p for label, p in by_part.items() if label.startswith(prefix)]
        n, p50, p99 = _oracle(values)
        assert part.minutes == n, prefix
        assert part.p50_seconds == pytest.approx(p50, abs=2e-6), prefix
        assert part.p99_seconds == pytest.approx(p99, abs=2e-6), prefix
    assert status.newest_bar_utc == NEWEST
    assert status.last_arrival_utc == planted["last"]
    assert status.live_feed


@pytest.mark.parametrize(
    ("after_last_arrival", "stale"),
    [
        (timedelta(minutes=4), False),
        (timedelta(minutes=6), True),
        (timedelta(hours=3, minutes=6), True),  # 18:06 UTC Wednesday: still open
        (timedelta(days=2, hours=9), False),  # Friday 19:03 New York: a weekend is no outage
    ],
)
def test_feed_stale_banner_only_when_the_market_is_open(live_db, after_last_arrival, stale):
    _, conn, planted = live_db
    now = planted["last"] + after_last_arrival
    data = load_dashboard_data(conn, DashboardConfig(now_utc=now))
    assert data.live is not None and data.live.feed_stale is stale
    page = render_page(data)
    assert ('id="feed-stale"' in page) is stale
    assert 'id="feed-age"' in page and "Live loop" in page


def test_file_ingest_alone_is_no_live_feed(make_settings):
    """Bars loaded from a file (a replay database) never raise the banner or a latency."""
    settings = make_settings("dashboard_batch_only")
    with db.transaction(settings) as conn:
        ensure_raw_schema(conn)
        with conn.cursor() as cur:
            apply_ddl(cur, "online")
            _insert_bars(cur, [NEWEST - timedelta(minutes=i) for i in range(120)])
            cur.execute(
                "insert into bqx.online_predictions (pair, ts_utc, horizon_minutes, prediction, "
                "member_predictions, weights) values ('EURUSD', %s, 60, 0, '{}', '{}')",
                (NEWEST,),
            )
    conn = db.connect(settings)
    try:
        status = load_live_status(conn, NEWEST, now_utc=NEWEST + timedelta(days=1))
    finally:
        conn.close()
    assert not status.live_feed and not status.feed_stale
    end_to_end = [p for p in status.latency if p.part.startswith("end to end")]
    assert end_to_end and end_to_end[0].minutes == 0
