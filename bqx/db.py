"""Database selection and the embedded PostgreSQL lifecycle.

`BQX_DATABASE_URL` wins when set; otherwise an embedded PostgreSQL (pgserver) runs with its
data under `$BQX_HOME/pgdata`, listening on a Unix socket only.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import psycopg2
import psycopg2.extensions

from bqx.config import Settings
from bqx.errors import BqxUserError

log = logging.getLogger(__name__)

# Server settings for an analytical workload on a 2-core / 24 GB machine. Applied with
# ALTER SYSTEM to the embedded server only; a user's own server keeps its configuration.
EMBEDDED_SERVER_SETTINGS: dict[str, str] = {
    "shared_buffers": "1GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "synchronous_commit": "off",
    "max_parallel_workers_per_gather": "2",
    "jit": "off",
    # one build transaction creates and drops a partition tree (pairs × months × indexes)
    "max_locks_per_transaction": "1024",
    "timezone": "UTC",
}


@dataclass(frozen=True)
class ConnectionParams:
    """libpq parameters, also handed to dbt through environment variables."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def as_dbt_env(self) -> dict[str, str]:
        return {
            "BQX_PG_HOST": self.host,
            "BQX_PG_PORT": str(self.port),
            "BQX_PG_USER": self.user,
            "BQX_PG_PASSWORD": self.password,
            "BQX_PG_DBNAME": self.dbname,
        }


def parse_database_url(url: str) -> ConnectionParams:
    """Split a postgresql:// URL (TCP or `?host=/socket/dir`) into libpq parameters."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise BqxUserError(f"BQX_DATABASE_URL must start with postgresql://, got {parsed.scheme!r}")
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "localhost"])[0]
    return ConnectionParams(
        host=unquote(host),
        port=int(query.get("port", [parsed.port or 5432])[0]),
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password or ""),
        dbname=unquote(parsed.path.lstrip("/") or "postgres"),
    )


def _pgserver():
    """The pgserver module, imported lazily (it registers an atexit hook on import)."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (normal in containers and CI)
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils

    return pgserver


def _embedded_server(settings: Settings):
    settings.pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _pgserver().get_server(settings.pgdata, cleanup_mode=None)


def start_embedded(settings: Settings) -> str:
    """Start (or find running) the embedded server and return its URL."""
    server = _embedded_server(settings)
    url = server.get_uri()
    _apply_embedded_settings(settings, url)
    return url


def _apply_embedded_settings(settings: Settings, url: str) -> None:
    marker = settings.pgdata / ".bqx_configured"
    if marker.exists():
        return
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name, value in EMBEDDED_SERVER_SETTINGS.items():
            cur.execute(f"alter system set {name} = %s", (value,))
    conn.close()
    # shared_buffers needs a restart; pg_ctl restart keeps pgserver's socket-only options.
    _pg_ctl(settings, ["-w", "-l", str(settings.pgdata / "log"), "restart"])
    marker.write_text("configured\n")


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server; return False when it was not running."""
    info_type = _pgserver().utils.PostmasterInfo
    info = info_type.read_from_pgdata(settings.pgdata) if settings.pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    _pg_ctl(settings, ["-w", "stop"])
    return True


def _pg_ctl(settings: Settings, args: list[str]) -> None:
    pg_ctl = _pgserver().pg_ctl
    # pgserver runs the server as its own system user when we are root
    pg_ctl(args, pgdata=settings.pgdata, user="pgserver" if _running_as_root() else None)


def embedded_status(settings: Settings) -> str | None:
    """URL of the running embedded server, or None."""
    if not (settings.pgdata / "PG_VERSION").exists():
        return None
    info = _pgserver().utils.PostmasterInfo.read_from_pgdata(settings.pgdata)
    if info is None or not info.is_running():
        return None
    return info.get_uri()


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


def database_url(settings: Settings) -> str:
    """The URL every component uses: BQX_DATABASE_URL, else the embedded server (started)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings)


def connect(settings: Settings) -> psycopg2.extensions.connection:
    url = database_url(settings)
    try:
        return psycopg2.connect(url)
    except psycopg2.OperationalError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise BqxUserError(f"cannot connect to the database: {first_line}") from err


@contextlib.contextmanager
def transaction(settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    """A connection whose work commits on success and rolls back on any error."""
    conn = connect(settings)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def apply_sql_file(conn: psycopg2.extensions.connection, path: Path) -> None:
    with conn.cursor() as cur:
        cur.execute(path.read_text())
