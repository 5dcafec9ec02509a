"""Play bar files into raw.m1_bars one minute at a time: a feed for demos, tests and benches.

Anything that inserts into raw.m1_bars is a feed (a broker adapter, a loader, `bqx ingest`);
this one replays files (the generic CSV/gz `bqx synth` writes, or HistData, parsed by
bar_files) as if the minutes were happening now. All pairs of a minute go in one
transaction, so a reader (and the `bqx_bars` notification of raw.sql's trigger) sees a minute
whole or not at all. Minute i is committed at start + (ts_i - ts_0) / speed on the wall clock;
speed 0 plays as fast as the database takes it.

The rows equal what `bqx ingest` loads from the same files: the values and the `source` (the
file name) are the parser's, and lines the parser refuses go to raw.m1_bars_rejected once, as
ingest quarantines them. A bar already present is left as it is (insert ... on conflict do
nothing) and counted as a duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg2.extensions

from bqx.errors import BqxUserError
from bqx.ingest.bar_files import ParsedFile, parse_file
from bqx.ingest.loader import expand_paths, quarantine_lines
from bqx.sql import ensure_raw_schema

log = logging.getLogger(__name__)

# (minutes done, minutes in all, the minute just committed)
MinuteCallback = Callable[[int, int, datetime], None]

_INSERT_MINUTE = """
    insert into raw.m1_bars (pair, ts_utc, open, high, low, close, volume, source)
    select * from unnest(
        %(pair)s::text[], %(ts_utc)s::timestamptz[], %(open)s::float8[], %(high)s::float8[],
        %(low)s::float8[], %(close)s::float8[], %(volume)s::float8[], %(source)s::text[]
    )
    on conflict (pair, ts_utc) do nothing
"""


@dataclass
class FeedResult:
    minutes: int = 0
    bars: int = 0  # inserted
    duplicates: int = 0  # present already, left as they were
    rejected: int = 0  # lines the parser refused (quarantined)
    seconds: float = 0.0
    commit_seconds: list[float] = field(default_factory=list)  # per minute: insert + commit
    first: datetime | None = None
    last: datetime | None = None

    @property
    def minutes_per_second(self) -> float:
        return self.minutes / self.seconds if self.seconds else 0.0


def read_bars(
    paths: Iterable[Path],
    pairs: Iterable[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[pd.DataFrame, list[ParsedFile]]:
    """The bars of the files (directories expanded), of `pairs` (all when empty) with
    start <= ts_utc < end, sorted by (ts_utc, pair), with a `source` column; and the parsed
    files (for their rejected lines)."""
    parsed = [parse_file(path) for path in expand_paths(paths)]
    frames = []
    for one in parsed:
        bars = one.bars.drop(columns=["line_no", "raw_line"]).assign(source=one.source)
        frames.append(bars)
    bars = pd.concat(frames, ignore_index=True)
    wanted = set(pairs)
    if wanted:
        bars = bars[bars["pair"].isin(wanted)]
    if start is not None:
        bars = bars[bars["ts_utc"] >= pd.Timestamp(start)]
    if end is not None:
        bars = bars[bars["ts_utc"] < pd.Timestamp(end)]
    if bars.empty:
        raise BqxUserError("no bars to feed in the files for those pairs and dates")
    # a pair found in two files (EURUSD.csv.gz and a HistData twin) is fed once, first file wins
    bars = bars.drop_duplicates(["pair", "ts_utc"], keep="first")
    return bars.sort_values(["ts_utc", "pair"], kind="stable").reset_index(drop=True), parsed


def minutes_of(bars: pd.DataFrame) -> Iterator[tuple[pd.Timestamp, pd.DataFrame]]:
    """(minute, its bars) in time order."""
    yield from bars.groupby("ts_utc", sort=True)


def quarantine(conn: psycopg2.extensions.connection, parsed: Iterable[ParsedFile]) -> int:
    """The refused lines of the files into raw.m1_bars_rejected through ingest's quarantine
    step (loader.quarantine_lines: once per file content and line). Returns how many lines
    the files refused."""
    total = 0
    with conn, conn.cursor() as cur:
        for one in parsed:
            total += len(one.rejected)
            quarantine_lines(cur, one.source, one.sha256, one.rejected)
    return total


def insert_minute(cur, bars: pd.DataFrame) -> int:
    """Insert one minute's bars (the caller commits). Returns the rows inserted."""
    cur.execute(
        _INSERT_MINUTE,
        {
            "pair": list(bars["pair"]),
            "ts_utc": [t.to_pydatetime() for t in bars["ts_utc"]],
            "open": bars["open"].tolist(),
            "high": bars["high"].tolist(),
            "low": bars["low"].tolist(),
            "close": bars["close"].tolist(),
            "volume": bars["volume"].tolist(),
            "source": list(bars["source"]),
        },
    )
    return cur.rowcount


def play(
    conn: psycopg2.extensions.connection,
    bars: pd.DataFrame,
    speed: float = 0.0,
    on_minute: MinuteCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FeedResult:
    """Commit `bars` (sorted by ts_utc) minute by minute, all pairs of a minute in one
    transaction, minute i at start + (ts_i - ts_0) / speed seconds (speed 0: no waiting)."""
    if speed < 0:
        raise BqxUserError(f"--speed must be 0 (as fast as possible) or more, got {speed}")
    with conn:
        ensure_raw_schema(conn)
    result = FeedResult()
    groups = list(minutes_of(bars))
    started = clock()
    first_ts = groups[0][0] if groups else None
    for done, (ts, minute_bars) in enumerate(groups, start=1):
        if speed > 0:
            due = started + (ts - first_ts).total_seconds() / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        began = time.perf_counter()
        with conn, conn.cursor() as cur:
            inserted = insert_minute(cur, minute_bars)
        result.commit_seconds.append(time.perf_counter() - began)
        result.minutes += 1
        result.bars += inserted
        result.duplicates += len(minute_bars) - inserted
        result.first = result.first or ts.to_pydatetime()
        result.last = ts.to_pydatetime()
        if on_minute:
            on_minute(done, len(groups), result.last)
    result.seconds = clock() - started
    log.info(
        "fed %d minutes (%d bars, %d duplicates) in %.1f s",
        result.minutes,
        result.bars,
        result.duplicates,
        result.seconds,
    )
    return result
