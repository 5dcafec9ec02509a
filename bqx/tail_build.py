"""The tail build: append the minutes after the newest built one to every partitioned table,
with the dbt models' own SQL (one definition of each feature for batch and live).

dbt runs the partitioned models with var `tail_from`: each model deletes its rows at or after
that minute (less its `tail_lookback_minutes`: ml_targets' rows wait for their horizon) and
re-inserts what its query gives for them, reading a look-back halo before it sized to the
model's windows (tail_halo_minutes in macros/scope/build_scope.sql: 62 minutes of bars for
the grid, which carries the segment start from its own row before the tail; 690 minutes for
most models), macros/materializations/partitioned_table.sql; a new month's partitions are
created when the bars cross into it. In serve, DbtSession.tail runs the models' queries as
dbt compiled them once (bqx/tail_sql.py), in one transaction, without dbt's per-model cost.

Where the tail starts: after the newest built minute, except where rows before it may still
change. The grid forward-fills a pair's newest bar up to the newest minute of any pair when
that is at most 60 minutes later (int_m1_grid_filled), so every pair has a row at each new
minute even when its bar for it is missing. Those trailing fills are what the pair's next bar
gives when it comes within 61 minutes of the last one; when it does not (the pair stays
silent for over an hour, a weekend), the batch build of the bars has no rows there, and the
tail starts right after the pair's last bar to delete them. So per pair: after its newest
grid row when that row is a bar, or its next bar has already come within 61 minutes of the
last; else after its last bar. Pairs whose newest row is more than 61 minutes older than the
newest built minute can no longer be filled and do not count. Without new bars (nothing newer
than the newest built minute, no late bar, no unfinished build) there is nothing to build.

A late bar (a correction, a vendor's late row) for a minute m before that start changes the
grid from its pair's previous bar on (the minutes in between are forward-filled when the gap
is at most 61 minutes, so from m - 60 at the earliest) and every row after it. Serve learns
the oldest minute each insert wrote from the NOTIFY payloads (`arrived_from`); when that is
before the tail's start it looks for bars there that the grid does not hold as they are
(late_bar_minute: one indexed join over those minutes) and starts the tail at m - 60
minutes; `bqx build --tail --tail-from` does the same by hand. Rows from there on are deleted
and recomputed, so they again equal the batch build; predictions are stored elsewhere and
stay as they were made.

Crash safety: dbt commits model by model, so a tail build killed in the middle leaves the grid
ahead of the tables after it. Each build is logged in bqx.live_tail_builds (bqx/sql/live.sql)
before dbt runs and marked finished after; the next build starts no later than the oldest
unfinished one's tail_from.

One build at a time: a batch `bqx build` holds the build lock (an advisory lock, BUILD_LOCK)
while it runs. serve's tail builds try it without waiting (try_build_lock); while a batch build
holds it serve skips the wake's tail build and the next wake catches up, from the grid's
newest minute and the tail log, as after any slow build.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg2.extensions

from bqx import db
from bqx.config import Settings
from bqx.dbt_runner import (
    BUILD_BUSY,
    BUILD_LOCK,
    POSTGRES_TARGET,
    PROJECT_DIR,
    BuildScope,
    dbt_env,
    run_dbt,
)
from bqx.errors import BqxUserError
from bqx.pairs import PAIRS
from bqx.sql import apply_ddl
from bqx.tail_sql import CompiledTail

log = logging.getLogger(__name__)

GRID = "bqx.int_m1_grid_filled"  # the first partitioned model: every other one follows it
MINUTE = timedelta(minutes=1)
FILL_LIMIT = timedelta(minutes=61)  # int_m1_grid_filled fills gaps of at most this
LATE_REACH = FILL_LIMIT - timedelta(minutes=1)  # a bar's fill reaches back this far at most
TAIL_SELECTOR = "config.materialized:partitioned_table"


def try_build_lock(settings: Settings) -> psycopg2.extensions.connection | None:
    """The build lock, held by a connection of its own (close it to release), or None at once
    when another build holds it."""
    try:
        return db.hold_advisory_locks(settings, BUILD_LOCK, ["all"], BUILD_BUSY)
    except BqxUserError:
        return None


@dataclass(frozen=True)
class GridEnd:
    """A pair's newest grid row (`newest`), its newest bar in the grid (`last_bar`: the same
    minute unless the rows after it are trailing fills) and its first bar in raw.m1_bars after
    `newest` (`next_bar`, None when none came yet)."""

    newest: datetime
    last_bar: datetime
    next_bar: datetime | None

    def tail_from(self) -> datetime:
        """The first minute of this pair a tail build may change (see the module docstring)."""
        settled = self.next_bar is not None and self.next_bar - self.last_bar <= FILL_LIMIT
        if self.newest == self.last_bar or settled:
            return self.newest + MINUTE
        return self.last_bar + MINUTE


def grid_ends(conn: psycopg2.extensions.connection) -> dict[str, GridEnd]:
    """Each pair's GridEnd (pairs without rows left out); a few index probes per pair."""
    with conn, conn.cursor() as cur:
        cur.execute("select to_regclass(%s) is not null", (GRID,))
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            f"""
            select
                p.pair,
                g.ts_utc,
                (select max(f.ts_utc) from {GRID} as f
                 where f.pair = p.pair and not f.is_filled
                   and f.ts_utc <= g.ts_utc and f.ts_utc >= g.ts_utc - %(reach)s),
                (select min(b.ts_utc) from raw.m1_bars as b
                 where b.pair = p.pair and b.ts_utc > g.ts_utc)
            from unnest(%(pairs)s::text[]) as p (pair)
            cross join lateral (
                select e.ts_utc from {GRID} as e where e.pair = p.pair
                order by e.ts_utc desc limit 1
            ) as g
            """,
            {"pairs": list(PAIRS), "reach": FILL_LIMIT},
        )
        return {
            pair: GridEnd(newest, last_bar or newest, next_bar)
            for pair, newest, last_bar, next_bar in cur.fetchall()
        }


def pairs_with_bars(conn: psycopg2.extensions.connection) -> tuple[str, ...]:
    """The pairs of the universe with bars in raw.m1_bars (one index probe per pair)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "select p.pair from unnest(%s::text[]) as p (pair)"
            " where exists (select 1 from raw.m1_bars as b where b.pair = p.pair) order by 1",
            (list(PAIRS),),
        )
        return tuple(row[0] for row in cur.fetchall())


def next_tail_from(conn: psycopg2.extensions.connection) -> tuple[datetime, datetime] | None:
    """The first minute the next tail build recomputes and the newest built minute (None:
    nothing built yet)."""
    ends = grid_ends(conn)
    if not ends:
        return None
    latest = max(end.newest for end in ends.values())
    open_ends = [end.tail_from() for end in ends.values() if latest - end.newest <= FILL_LIMIT]
    return min(open_ends), latest


def late_bar_minute(
    conn: psycopg2.extensions.connection, arrived_from: datetime | None, next_from: datetime
) -> datetime | None:
    """The oldest minute in [arrived_from, next_from) whose bar the grid does not hold as it is
    in raw.m1_bars (missing, forward-filled, or other values: a late bar or a correction);
    None when there is none. Bars announced there may also be ones the last tail build read
    already (committed after serve took the announcements, before dbt read them): those the
    grid holds, so they are not taken for late."""
    if arrived_from is None or arrived_from >= next_from:
        return None
    with conn, conn.cursor() as cur:
        cur.execute(
            f"""
            select min(b.ts_utc)
            from raw.m1_bars as b
            left join {GRID} as g on g.pair = b.pair and g.ts_utc = b.ts_utc
            where b.ts_utc >= %(lo)s and b.ts_utc < %(hi)s
              and (g.ts_utc is null or g.is_filled
                   or (g.open, g.high, g.low, g.close, g.volume)
                      is distinct from (b.open, b.high, b.low, b.close, b.volume))
            """,
            {"lo": arrived_from, "hi": next_from},
        )
        return cur.fetchone()[0]


def late_tail_from(late_minute: datetime | None) -> datetime | None:
    """Where a tail must start for a late bar at `late_minute` (LATE_REACH before it)."""
    return None if late_minute is None else late_minute - LATE_REACH


def unfinished_tail_from(conn: psycopg2.extensions.connection) -> datetime | None:
    """The oldest tail_from of a tail build that never finished (None: none)."""
    with conn, conn.cursor() as cur:
        apply_ddl(cur, "live")
        cur.execute("select min(tail_from) from bqx.live_tail_builds where finished_at is null")
        return cur.fetchone()[0]


def _log_start(
    conn: psycopg2.extensions.connection, start: datetime, newest: datetime | None, late: bool
) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(
            "insert into bqx.live_tail_builds (tail_from, newest_bar, late) values (%s, %s, %s)"
            " returning tail_id",
            (start, newest, late),
        )
        return cur.fetchone()[0]


def _log_finish(conn: psycopg2.extensions.connection, tail_id: int, seconds: float) -> None:
    """This build and every older unfinished one (it recomputed what they left) are done."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "update bqx.live_tail_builds set finished_at = now(), seconds = %s where tail_id = %s",
            (seconds, tail_id),
        )
        cur.execute(
            "update bqx.live_tail_builds set finished_at = now()"
            " where finished_at is null and tail_id < %s",
            (tail_id,),
        )


def newest_bar(conn: psycopg2.extensions.connection) -> datetime | None:
    with conn, conn.cursor() as cur:
        cur.execute("select max(ts_utc) from raw.m1_bars")
        return cur.fetchone()[0]


def tail_literal(ts: datetime) -> str:
    """The dbt var's text of a minute: 'YYYY-MM-DD HH:MM:00+00' (UTC)."""
    return ts.astimezone(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%d %H:%M:00+00")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` for the block (dbt reads the connection from it), then back."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class DbtSession:
    """dbt kept in this process (dbtRunner, the project parsed once): a tail build then skips
    starting dbt and parsing the project, which is most of a tail build's time on a small
    tail (bench/live.py: 15 s of 21 s with a dbt process per build, under load)."""

    def __init__(self, settings: Settings) -> None:
        from dbt.cli.main import dbtRunner

        self.env = dbt_env(settings, POSTGRES_TARGET)
        self.project = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
        with _environment(self.env):
            parsed = dbtRunner().invoke(["--quiet", "parse", *self.project])
        if not parsed.success:
            raise RuntimeError(f"dbt could not parse the project: {parsed.exception}")
        self.runner = dbtRunner(manifest=parsed.result)
        self.last_timings: dict[str, float] = {}  # model -> seconds, of the last run
        self.compiled: CompiledTail | None = None  # the tail statements (bqx/tail_sql.py)
        self._compiled_for: tuple = ()  # the scope, month and pairs with bars of the last tail

    def run(self, args: list[str], scope: BuildScope) -> bool:
        with _environment(self.env):
            result = self.runner.invoke(
                [*args, *self.project, "--vars", json.dumps(scope.as_vars())]
            )
        self.last_timings = {
            node.node.name: float(node.execution_time)
            for node in getattr(result.result, "results", None) or []
        }
        return bool(result.success)

    def compile(self, selector: str, scope: BuildScope) -> dict:
        """dbt's compiled nodes of `selector` under `scope` (unique_id -> node)."""
        with _environment(self.env):
            result = self.runner.invoke(
                ["--quiet", "compile", "--select", selector, *self.project]
                + ["--vars", json.dumps(scope.as_vars())]
            )
        if not result.success:
            raise RuntimeError(f"dbt could not compile the tail models: {result.exception}")
        return {r.node.unique_id: r.node for r in result.result.results}

    def forget_compiled(self) -> None:
        """Through dbt (and compile again) at the next tail: a batch build may have changed
        what the models read when they compile, such as the lead-lag slots."""
        self.compiled = None
        self._compiled_for = ()

    def tail(
        self, conn: psycopg2.extensions.connection, scope: BuildScope, newest: datetime | None
    ) -> bool:
        """A tail build from scope.tail_from by the compiled statements (CompiledTail). Through
        dbt instead when they may be stale: the first tail (unless `prepare` compiled them),
        a pair's first bars
        (sister_correlation lists its couples when it compiles), a new month (the
        materialization creates its partitions), after forget_compiled, or when a compiled
        statement fails."""
        key = self._key(conn, scope, newest)
        if key != self._compiled_for:
            self.compiled = None
            self._compiled_for = key
            return self._through_dbt(scope)
        if self.compiled is None:
            self.compiled = CompiledTail(self, scope, TAIL_SELECTOR)
        try:
            self.last_timings = self.compiled.run(conn, scope.tail_from or "")
        except psycopg2.Error as err:  # rolled back: the same tail through dbt
            log.warning("the compiled tail build failed, dbt runs it: %s", db.first_line(err))
            self.forget_compiled()
            return self._through_dbt(scope)
        return True

    def _key(
        self, conn: psycopg2.extensions.connection, scope: BuildScope, newest: datetime | None
    ) -> tuple:
        """What the compiled statements depend on: the split, the month of the newest bar, the
        pairs with bars."""
        month = None if newest is None else f"{newest:%Y-%m}"
        return (scope.train_end, scope.validation_end, month, pairs_with_bars(conn))

    def prepare(self, conn: psycopg2.extensions.connection, scope: BuildScope) -> bool:
        """Compile the tail statements now for the newest bar's month (serve's start, before
        any new bar; under the build lock): its first tail then runs them, unless the new
        bars change what they depend on (a new month, a pair's first bars), instead of going
        through dbt and compiling at the second. Measured (bench/live.py, 28 pairs): those
        two start-up tails took 4.6-8.6 s and 3.5-7.9 s. False when nothing is built yet or
        dbt cannot compile (the first tail then goes through dbt, as without it)."""
        newest = newest_bar(conn)
        if newest is None or next_tail_from(conn) is None:
            return False
        try:
            compiled = CompiledTail(self, scope, TAIL_SELECTOR)
        except RuntimeError as err:
            log.warning("the tail statements were not compiled at start: %s", err)
            return False
        self.compiled, self._compiled_for = compiled, self._key(conn, scope, newest)
        return True

    def _through_dbt(self, scope: BuildScope) -> bool:
        return self.run(["--quiet", "run", "--select", TAIL_SELECTOR], scope)


def tail_build(
    settings: Settings,
    conn: psycopg2.extensions.connection,
    tail_from: datetime | None = None,
    scope: BuildScope | None = None,
    quiet: bool = True,
    session: DbtSession | None = None,
    arrived_from: datetime | None = None,
) -> datetime | None:
    """Recompute every partitioned table from `tail_from` (default: next_tail_from, or
    earlier when bars announced from `arrived_from` on hold a late one: late_bar_minute)
    on, in `session` (a long-lived dbt) or a dbt process of its own. Returns the minute the
    tail started at, or None when there was nothing new."""
    base = scope or BuildScope()
    if base.month_from or base.pairs:
        raise BqxUserError("a tail build covers every pair from its minute on: no months/pairs")
    following = next_tail_from(conn)
    if following is None and tail_from is None:
        raise BqxUserError("nothing is built yet: run a full `bqx build` before a tail build")
    start, built = tail_from or following[0], None if following is None else following[1]
    late = late_tail_from(late_bar_minute(conn, arrived_from, start)) if tail_from is None else None
    if late is not None:
        log.info("a bar arrived late (%s): the tail starts at %s", late + LATE_REACH, late)
        tail_from = start = late
    unfinished = unfinished_tail_from(conn)
    if unfinished is not None and unfinished < start:
        log.info("a tail build from %s did not finish: the tail starts there", unfinished)
        tail_from = start = unfinished
    newest = newest_bar(conn)
    if tail_from is None and (newest is None or newest < start or newest <= built):
        return None  # no bar newer than the newest built minute, none late, none unfinished
    began = time.perf_counter()
    tail_id = _log_start(conn, start, newest, late is not None)
    tail_scope = BuildScope(
        train_end=base.train_end, validation_end=base.validation_end, tail_from=tail_literal(start)
    )
    args = [*(["--quiet"] if quiet else []), "run", "--select", TAIL_SELECTOR]
    if session is not None:
        ok = session.tail(conn, tail_scope, newest)
    else:  # a dbt process of its own (live is PostgreSQL)
        ok = run_dbt(settings, args, scope=tail_scope, target=POSTGRES_TARGET) == 0
    if not ok:
        raise RuntimeError(f"the tail build from {start} failed (see dbt's log above)")
    _log_finish(conn, tail_id, time.perf_counter() - began)
    log.info("tail build from %s to %s", start, newest)
    return start
