"""Database selection and the embedded PostgreSQL lifecycle.

`BQX_DATABASE_URL` wins when set; otherwise an embedded PostgreSQL (pgserver) runs with its
data under `$BQX_HOME/pgdata`, listening on a Unix socket only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
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
# ALTER SYSTEM to the embedded server only, once per data directory and set (settings_stamp);
# a user's own server keeps its configuration.
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
    # A build creates, fills and indexes each table's new partition tree in one transaction
    # (a --months build truncates its partitions in it): under wal_level = minimal PostgreSQL
    # writes no WAL for those relations and syncs their files at commit instead (a file under
    # wal_skip_threshold, 2 MB, goes to WAL then), so a crash loses no committed row
    # (tests/python/test_embedded_server.py crashes the server after such a commit). Real March
    # 2017, 28 pairs, base + split + cross-pair models (`dbt run`, 2 threads), A/B/A/B/A/B on
    # one database, load 3.0-4.3 on 2 cores: WAL 3,060 MB → 470 MB per build, server CPU
    # 72.6/75.1/72.8 s → 69.3/67.9/70.2 s (-6 %), wall 66.2/68.5/67.7 s → 59.8/71.3/68.3 s
    # (within the load's noise). Of the WAL left (pg_waldump --stats), 89 % is the files under
    # wal_skip_threshold written whole at commit, the rest catalog rows and autovacuum. What
    # minimal gives up, WAL archiving and replicas, the embedded server never has.
    "wal_level": "minimal",
    "max_wal_senders": "0",  # wal_level = minimal refuses to start with WAL senders
}


# libpq's connection parameters that a URL may carry as ?name=value, and the environment
# variable through which libpq in the dbt process reads each one (the PostgreSQL manual's
# "Environment Variables"): dbt's profile names only host/port/user/password/dbname, so an
# option like ?sslmode=require reaches dbt this way and dbt connects as Python does.
LIBPQ_ENV: dict[str, str] = {
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "requiressl": "PGREQUIRESSL",
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "gssdelegation": "PGGSSDELEGATION",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "hostaddr": "PGHOSTADDR",
    "options": "PGOPTIONS",
    "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# options dbt's profile sets itself: passed as BQX_PG_* for profiles.yml
PROFILE_OPTIONS = ("connect_timeout", "application_name", "keepalives_idle")
_URL_PARTS = ("host", "port", "user", "password", "dbname")
_SCHEMES = ("postgresql", "postgres")
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*):[^\s/?#]*@")
_PASSWORD_OPTION = re.compile(r"(?P<key>password=)[^&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password of every URL in it (user:PASSWORD@, ?password=...) replaced
    by ***: what every message and log line that may hold a database URL goes through."""
    text = _CREDENTIALS.sub(r"\g<scheme>:***@", text)
    return _PASSWORD_OPTION.sub(r"\g<key>***", text)


@dataclass(frozen=True)
class ConnectionParams:
    """libpq parameters, also handed to dbt through environment variables."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    options: tuple[tuple[str, str], ...] = ()  # the URL's other ?name=value, in order

    def as_dbt_env(self) -> dict[str, str]:
        env = {
            "BQX_PG_HOST": self.host,
            "BQX_PG_PORT": str(self.port),
            "BQX_PG_USER": self.user,
            "BQX_PG_PASSWORD": self.password,
            "BQX_PG_DBNAME": self.dbname,
        }
        for name, value in self.options:
            key = f"BQX_PG_{name.upper()}" if name in PROFILE_OPTIONS else LIBPQ_ENV[name]
            env[key] = value
        return env


def parse_database_url(url: str) -> ConnectionParams:
    """Split a postgresql:// URL (TCP or `?host=/socket/dir`) into libpq parameters. A URL
    this cannot read is a user error whose message never holds the password."""
    shown = redact(url)
    parsed = urlparse(url)
    if parsed.scheme not in _SCHEMES:
        raise BqxUserError(
            f"BQX_DATABASE_URL must start with postgresql://, got {parsed.scheme + '://'!r} "
            f"in {shown}"
        )
    try:
        query = parse_qs(parsed.query, keep_blank_values=True, errors="strict")
        parts = {
            "user": unquote(parsed.username or "postgres", errors="strict"),
            "password": unquote(parsed.password or "", errors="strict"),
            "dbname": unquote(parsed.path.lstrip("/") or "postgres", errors="strict"),
        }
    except UnicodeDecodeError:
        raise BqxUserError(f"BQX_DATABASE_URL has a bad %-escape: {shown}") from None
    for text in (parsed.netloc, parsed.path, parsed.query):
        if re.search(r"%(?![0-9A-Fa-f]{2})", text):
            raise BqxUserError(f"BQX_DATABASE_URL has a bad %-escape (write % as %25): {shown}")
    try:
        url_port = parsed.port
    except ValueError:
        raise BqxUserError(f"BQX_DATABASE_URL has a non-numeric port: {shown}") from None
    port_text = query.pop("port", [str(url_port or 5432)])[0]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BqxUserError(f"BQX_DATABASE_URL has a bad port {port_text!r}: {shown}")
    host = query.pop("host", [parsed.hostname or "localhost"])[0]
    for name in ("user", "password", "dbname"):
        if name in query:
            parts[name] = query.pop(name)[0]
    unknown = sorted(set(query) - set(LIBPQ_ENV) - set(PROFILE_OPTIONS))
    if unknown:
        raise BqxUserError(
            f"BQX_DATABASE_URL option {unknown[0]!r} is not one dbt can be given "
            f"(known: {', '.join(sorted([*LIBPQ_ENV, *PROFILE_OPTIONS]))})"
        )
    return ConnectionParams(
        host=unquote(host),
        port=int(port_text),
        options=tuple((name, values[-1]) for name, values in query.items()),
        **parts,
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


def settings_stamp() -> str:
    """What the marker file of a configured data directory holds: a digest of
    EMBEDDED_SERVER_SETTINGS, so a data directory configured with another set (an older
    release's) is configured again, once: its restart ends the sessions open on the server."""
    text = json.dumps(EMBEDDED_SERVER_SETTINGS, sort_keys=True)
    return f"configured {hashlib.sha256(text.encode()).hexdigest()[:16]}\n"


def _apply_embedded_settings(settings: Settings, url: str) -> None:
    marker = settings.pgdata / ".bqx_configured"
    if marker.exists() and marker.read_text() == settings_stamp():
        return
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        # reset first: a setting an older set had and this one dropped goes back to default
        cur.execute("alter system reset all")
        for name, value in EMBEDDED_SERVER_SETTINGS.items():
            cur.execute(f"alter system set {name} = %s", (value,))
    conn.close()
    # shared_buffers and wal_level need a restart; pg_ctl restart keeps pgserver's socket-only
    # options.
    _pg_ctl(settings, ["-w", "-l", str(settings.pgdata / "log"), "restart"])
    marker.write_text(settings_stamp())


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


def postmaster_pid(settings: Settings) -> int | None:
    """PID of the embedded server under `settings.home` (None when none has started there,
    as for an external server)."""
    pid_file = settings.pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


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
    parse_database_url(url)  # a URL libpq would refuse: one line, no password
    try:
        return psycopg2.connect(url)
    except psycopg2.Error as err:
        raise BqxUserError(f"cannot connect to the database: {first_line(err)}") from None


def first_line(err: BaseException) -> str:
    """The first line of an error's message, any URL password in it redacted."""
    text = str(err).strip()
    return redact(text.splitlines()[0] if text else repr(err))


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


def hold_advisory_locks(
    settings: Settings, namespace: str, names: list[str], busy: str
) -> psycopg2.extensions.connection:
    """A connection of its own holding the session advisory locks `namespace:name` (hashed to
    bigint keys); closing it releases them, and so does the holder's death, kill -9 included
    (the server sees its connection close). When another session holds one, BqxUserError
    `busy` (formatted with {name}) at once, rather than a wait."""
    conn = connect(settings)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(
                    "select pg_try_advisory_lock(hashtextextended(%s, 0))", (f"{namespace}:{name}",)
                )
                if not cur.fetchone()[0]:
                    raise BqxUserError(busy.format(name=name))
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def advisory_locks(
    settings: Settings, namespace: str, names: list[str], busy: str
) -> Iterator[None]:
    """hold_advisory_locks for the block."""
    conn = hold_advisory_locks(settings, namespace, names, busy)
    try:
        yield
    finally:
        conn.close()
