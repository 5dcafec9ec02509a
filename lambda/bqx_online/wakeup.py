"""Wake on data: LISTEN on the channel raw.sql's trigger notifies when bars commit.

`bqx online serve` waits here instead of sleep-polling: select() on the connection's socket
returns as soon as PostgreSQL delivers a `bqx_bars` notification (at the commit of the
inserting transaction), or after the timeout, which stays as a fallback for features written
without new bars (a `bqx build` run by hand). The connection is a dedicated autocommit one:
notifications wait in a session until it reads them, and LISTEN inside an open transaction
would only take effect at its commit.
"""

from __future__ import annotations

import select
from datetime import UTC, datetime

import psycopg2.extensions

CHANNEL = "bqx_bars"


def parse_minute(payload: str) -> datetime | None:
    """The minute a `bqx_bars` payload names (ISO 8601, UTC), None when it is not one."""
    try:
        moment = datetime.fromisoformat(payload.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class BarsListener:
    """`wait(timeout)` blocks until new bars committed (returns the newest minute announced)
    or the timeout passed (returns None)."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"listen {CHANNEL}")  # a constant, not user input
        self.newest: datetime | None = None

    def _drain(self) -> datetime | None:
        self.conn.poll()
        announced = None
        while self.conn.notifies:
            notice = self.conn.notifies.pop(0)
            if notice.channel != CHANNEL:
                continue
            minute = parse_minute(notice.payload)
            if minute is not None and (announced is None or minute > announced):
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

    def close(self) -> None:
        self.conn.close()
