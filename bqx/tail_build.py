"""The tail build: append the minutes after the newest built one to every partitioned table,
with the dbt models' own SQL (one definition of each feature for batch and live).

dbt runs the partitioned models with var `tail_from`: each model deletes its rows at or after
that minute (less its `tail_lookback_minutes`: ml_targets' rows wait for their horizon) and
re-inserts what its query gives for them, reading the usual look-back halo before it
(macros/scope/build_scope.sql, macros/materializations/partitioned_table.sql); a new month's
partitions are created when the bars cross into it.

Where the tail starts: the grid forward-fills a pair's minutes up to its next bar when the gap
is at most an hour, so a pair whose newest bar is older than the others' still gets rows
before the newest built minute once its next bar comes. The tail therefore starts after the
oldest newest-minute among the pairs that can still be filled (newest within 61 minutes of the
newest built minute). A late bar (a correction, a vendor's late row) older than that is
recomputed by passing its minute as `tail_from` explicitly.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg2.extensions

from bqx.config import Settings
from bqx.dbt_runner import POSTGRES_TARGET, PROJECT_DIR, BuildScope, dbt_env, run_dbt
from bqx.errors import BqxUserError
from bqx.pairs import PAIRS

log = logging.getLogger(__name__)

GRID = "bqx.int_m1_grid_filled"  # the first partitioned model: every other one follows it
FILL_LIMIT = timedelta(minutes=61)  # int_m1_grid_filled fills gaps of at most this
TAIL_SELECTOR = "config.materialized:partitioned_table"


def newest_built_minutes(conn: psycopg2.extensions.connection) -> dict[str, datetime]:
    """Each pair's newest minute in the grid (pairs without rows left out); one index probe
    per pair."""
    with conn, conn.cursor() as cur:
        cur.execute("select to_regclass(%s) is not null", (GRID,))
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            f"""
            select p.pair, (select max(g.ts_utc) from {GRID} as g where g.pair = p.pair)
            from unnest(%s::text[]) as p (pair)
            """,
            (list(PAIRS),),
        )
        return {pair: ts for pair, ts in cur.fetchall() if ts is not None}


def next_tail_from(conn: psycopg2.extensions.connection) -> datetime | None:
    """The first minute the next tail build recomputes (None: nothing built yet)."""
    newest = newest_built_minutes(conn)
    if not newest:
        return None
    latest = max(newest.values())
    open_ends = [ts for ts in newest.values() if latest - ts <= FILL_LIMIT]
    return min(open_ends) + timedelta(minutes=1)


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

    def run(self, args: list[str], scope: BuildScope) -> bool:
        with _environment(self.env):
            result = self.runner.invoke(
                [*args, *self.project, "--vars", json.dumps(scope.as_vars())]
            )
        return bool(result.success)


def tail_build(
    settings: Settings,
    conn: psycopg2.extensions.connection,
    tail_from: datetime | None = None,
    scope: BuildScope | None = None,
    quiet: bool = True,
    session: DbtSession | None = None,
) -> datetime | None:
    """Recompute every partitioned table from `tail_from` (default: next_tail_from) on, in
    `session` (a long-lived dbt) or a dbt process of its own. Returns the minute the tail
    started at, or None when there was nothing new."""
    base = scope or BuildScope()
    if base.month_from or base.pairs:
        raise BqxUserError("a tail build covers every pair from its minute on: no months/pairs")
    start = tail_from or next_tail_from(conn)
    if start is None:
        raise BqxUserError("nothing is built yet: run a full `bqx build` before a tail build")
    newest = newest_bar(conn)
    if tail_from is None and (newest is None or newest < start):
        return None
    tail_scope = BuildScope(
        train_end=base.train_end, validation_end=base.validation_end, tail_from=tail_literal(start)
    )
    args = [*(["--quiet"] if quiet else []), "run", "--select", TAIL_SELECTOR]
    if session is not None:
        ok = session.run(args, tail_scope)
    else:  # a dbt process of its own (live is PostgreSQL)
        ok = run_dbt(settings, args, scope=tail_scope, target=POSTGRES_TARGET) == 0
    if not ok:
        raise RuntimeError(f"the tail build from {start} failed (see dbt's log above)")
    log.info("tail build from %s to %s", start, newest)
    return start
