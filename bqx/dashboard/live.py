"""The live loop's health (issue 15): how old the feed is, and how long each minute took.

Three logs feed it, each written where the work happens: raw.bar_arrivals (the trigger on
raw.m1_bars, one row per statement that wrote bars), bqx.live_tail_builds (each tail build of
`bqx online serve`) and bqx.online_steps (each handler step, with its parts). Latency is
summarised as p50 / p99 over the hour before the newest prediction (market time, like every
other window of the dashboard); the feed's age is measured on the wall clock, since it says
whether bars are coming now.

End to end = from the arrival of a minute's bars (the last single-minute arrival for that
minute before its predictions were stored) to the newest of its stored predictions. Only
single-minute arrivals count: a file ingest covers many minutes at once, so a replay of
history has no end-to-end latency rather than one of days.

"Feed stale" needs a live feed to have run (at least one single-minute arrival) and the FX
market to be open: bars stop from Friday 17:00 to Sunday 17:00 New York time, and a quiet
weekend is not an outage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg2.extensions
from psycopg2 import sql

FEED_STALE_AFTER = timedelta(minutes=5)
NEW_YORK = ZoneInfo("America/New_York")
FRIDAY, SATURDAY, SUNDAY = 4, 5, 6
MARKET_TURN_HOUR = 17  # New York: the week closes Friday 17:00 and opens Sunday 17:00


def fx_market_open(at: datetime) -> bool:
    """True when the FX market trades at `at` (aware): not Friday 17:00 – Sunday 17:00 NY."""
    local = at.astimezone(NEW_YORK)
    day, hour = local.weekday(), local.hour
    if day == SATURDAY:
        return False
    if day == FRIDAY:
        return hour < MARKET_TURN_HOUR
    if day == SUNDAY:
        return hour >= MARKET_TURN_HOUR
    return True


@dataclass(frozen=True)
class LatencyPart:
    part: str
    minutes: int  # how many values the percentiles summarise
    p50_seconds: float | None
    p99_seconds: float | None


@dataclass
class LiveStatus:
    """None / empty where the log does not exist yet or has nothing in the window."""

    now_utc: datetime
    newest_bar_utc: datetime | None = None  # the newest minute any arrival wrote
    last_arrival_utc: datetime | None = None  # wall clock of the newest arrival
    live_feed: bool = False  # a single-minute arrival exists: something feeds minute by minute
    latency: list[LatencyPart] = field(default_factory=list)

    @property
    def feed_age(self) -> timedelta | None:
        return None if self.last_arrival_utc is None else self.now_utc - self.last_arrival_utc

    @property
    def feed_stale(self) -> bool:
        age = self.feed_age
        return (
            self.live_feed
            and age is not None
            and age > FEED_STALE_AFTER
            and fx_market_open(self.now_utc)
        )


def load_live_status(
    conn: psycopg2.extensions.connection,
    newest_prediction: datetime | None,
    now_utc: datetime | None = None,
) -> LiveStatus:
    """The live panel's numbers; now_utc None = the database's clock."""
    with conn.cursor() as cur:
        if now_utc is None:
            cur.execute("select now()")
            now_utc = cur.fetchone()[0]
        status = LiveStatus(now_utc=now_utc)
        cur.execute(EXISTING_SQL, (list(LOGS),))
        existing = {row[0] for row in cur.fetchall()}
        if "raw.bar_arrivals" in existing:
            cur.execute(FEED_SQL)
            status.newest_bar_utc, status.last_arrival_utc, status.live_feed = cur.fetchone()
        if newest_prediction is not None:
            status.latency = _latency(cur, newest_prediction, existing)
    conn.rollback()  # read-only: never leave a transaction open on a long-lived connection
    return status


def _latency(cur, newest: datetime, existing: set[str]) -> list[LatencyPart]:
    params = {"newest": newest}
    queries = []
    if {"raw.bar_arrivals", "bqx.online_predictions"} <= existing:
        queries.append(("end to end: bars committed → predictions stored", END_TO_END_SQL))
    if "bqx.live_tail_builds" in existing:
        queries.append(("tail build (every feature table)", TAIL_BUILD_SQL))
    parts = []
    for label, query in queries:
        cur.execute(query, params)
        parts.append(LatencyPart(label, *cur.fetchone()))
    if "bqx.online_steps" in existing:  # every part of a step from one pass over its rows
        cur.execute(STEP_SQL, params)
        row = cur.fetchone()
        for i, (label, _) in enumerate(STEP_COLUMNS):
            parts.append(LatencyPart(label, *row[3 * i : 3 * i + 3]))
    return parts


# the logs the panel reads; a database without some of them shows the rest
LOGS = ("raw.bar_arrivals", "bqx.online_predictions", "bqx.live_tail_builds", "bqx.online_steps")
EXISTING_SQL = "select name from unnest(%s::text[]) as t (name) where to_regclass(name) is not null"

# (label, bqx.online_steps column) of the handler step's parts
STEP_COLUMNS = (
    ("handler step: predict and store", "predict_seconds"),
    ("handler step: learn, drift, weights", "learn_seconds"),
    ("handler step: checkpoints", "checkpoint_seconds"),
    ("handler step: total", "seconds"),
)

_WINDOW = "ts_utc > %(newest)s - interval '1 hour' and ts_utc <= %(newest)s"


def _percentiles(value: str) -> str:
    """count, p50 and p99 of an expression (percentile_cont: numpy's linear percentile)."""
    return (
        f"count({value})::int, percentile_cont(0.5) within group (order by {value}), "
        f"percentile_cont(0.99) within group (order by {value})"
    )


_PERCENTILES = _percentiles("s")

FEED_SQL = sql.SQL(
    """
    select
        (select max(newest_minute) from raw.bar_arrivals),
        (select max(arrived_at) from raw.bar_arrivals),
        exists (select from raw.bar_arrivals where oldest_minute = newest_minute)
    """
)

END_TO_END_SQL = sql.SQL(
    f"""
    with stored as (
        select ts_utc, max(created_at) as stored_at
        from bqx.online_predictions
        where {_WINDOW}
        group by ts_utc
    ),
    seconds as (
        select extract(epoch from s.stored_at - max(a.arrived_at))::float8 as s
        from stored as s
        inner join raw.bar_arrivals as a
            on a.newest_minute = s.ts_utc and a.oldest_minute = s.ts_utc
            and a.arrived_at <= s.stored_at
        group by s.ts_utc, s.stored_at
    )
    select {_PERCENTILES} from seconds
    """
)

TAIL_BUILD_SQL = sql.SQL(
    f"""
    select {_PERCENTILES}
    from (
        select seconds as s from bqx.live_tail_builds
        where newest_bar > %(newest)s - interval '1 hour' and newest_bar <= %(newest)s
    ) as builds
    """
)

STEP_SQL = sql.SQL("select {} from bqx.online_steps where " + _WINDOW).format(
    sql.SQL(", ").join(
        sql.SQL(_percentiles("{c}")).format(c=sql.Identifier(column)) for _, column in STEP_COLUMNS
    )
)
