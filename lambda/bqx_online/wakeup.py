"""Wake on data: LISTEN on the channel raw.sql's trigger notifies when bars commit.

`bqx online serve` waits here instead of sleep-polling: select() on the connection's socket
returns as soon as PostgreSQL delivers a `bqx_bars` notification (at the commit of the
inserting transaction), or after the timeout, which stays as a fallback for features written
without new bars (a `bqx build` run by hand). The connection is a dedicated autocommit one:
notifications wait in a session until it reads them, and LISTEN inside an open transaction
would only take effect at its commit.

Late bars: a payload names the oldest and newest minute a statement wrote ('oldest/newest',
or one minute). The listener keeps the oldest minute announced since the caller last took it
(`take_oldest`), so serve can tell that a bar came for a minute it has already built and
recompute from there. A bar committed while no listener runs is not announced to it: after
a restart, recompute such a minute with `bqx build --tail --tail-from`.
"""

from __future__ import annotations

import select
from datetime import UTC, datetime

import psycopg2.extensions

CHANNEL = "bqx_bars"


def parse_minute(text: str) -> datetime | None:
    """The minute an ISO 8601 text names (UTC when it has no zone), None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_payload(payload: str) -> tuple[datetime, datetime] | None:
    """(oldest, newest) minute of a `bqx_bars` payload ('newest' or 'oldest/newest'), None
    when it is not one."""
    parts = [parse_minute(text) for text in payload.split("/")]
    if not 1 <= len(parts) <= 2 or any(part is None for part in parts):
        return None
    return min(parts), max(parts)


class BarsListener:
    """`wait(timeout)` blocks until new bars committed (returns the newest minute announced)
    or the timeout passed (returns None)."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"listen {CHANNEL}")  # a constant, not user input
        self.newest: datetime | None = None
        self.oldest: datetime | None = None  # since the last take_oldest()

    def _drain(self) -> datetime | None:
        self.conn.poll()
        announced = None
        while self.conn.notifies:
            notice = self.conn.notifies.pop(0)
            if notice.channel != CHANNEL:
                continue
            span = parse_payload(notice.payload)
            if span is None:
                continue
            oldest, minute = span
            self.oldest = min(self.oldest, oldest) if self.oldest else oldest
            if announced is None or minute > announced:
                announced = minute
        if announced is not None:
            self.newest = max(self.newest, announced) if self.newest else announced
        return announced

    def wait(self, timeout: float) -> datetime | None:
        announced = self._drain()  # delivered while the caller was busy
        if announced is not None:
            return announced
        readable, _, _ = select.select([self.conn], [], [], max(0.0, timeout))
        return self._drain() if readable else None

    def take_oldest(self) -> datetime | None:
        """The oldest minute announced since the last call (None: none), read now."""
        self._drain()
        oldest, self.oldest = self.oldest, None
        return oldest

    def close(self) -> None:
        self.conn.close()
