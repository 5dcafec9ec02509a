"""`bqx db start|stop|status|url|env`: the embedded PostgreSQL or BQX_DATABASE_URL."""

from __future__ import annotations

import typer

from bqx import db
from bqx.cli._shared import console, user_errors
from bqx.config import Settings
from bqx.errors import BqxUserError


@user_errors
def db_start():
    """Start the embedded PostgreSQL (no-op with BQX_DATABASE_URL)."""
    settings = Settings.from_env()
    url = db.database_url(settings)
    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select version()")
        version = " ".join(cur.fetchone()[0].split()[:2])
    where = "external" if settings.database_url else f"embedded at {settings.pgdata}"
    console.print(f"database ready ({where}): {version}")
    console.print(url, highlight=False)


@user_errors
def db_stop():
    """Stop the embedded PostgreSQL."""
    settings = Settings.from_env()
    if settings.database_url:
        raise BqxUserError("BQX_DATABASE_URL is set: that server is not ours to stop")
    stopped = db.stop_embedded(settings)
    console.print("stopped" if stopped else "not running")


@user_errors
def db_status():
    """Say whether the database is reachable; exit 1 when it is not."""
    settings = Settings.from_env()
    if settings.database_url:
        db.connect(settings).close()
        console.print("external database reachable")
        return
    url = db.embedded_status(settings)
    if url is None:
        console.print(f"embedded database not running ({settings.pgdata})")
        raise typer.Exit(1)
    console.print(f"embedded database running: {url}", highlight=False)


@user_errors
def db_url():
    """Print the database URL (starting the embedded server if needed)."""
    typer.echo(db.database_url(Settings.from_env()))


@user_errors
def db_env():
    """Print shell exports that let plain `dbt` reach the database: eval "$(bqx db env)"."""
    params = db.parse_database_url(db.database_url(Settings.from_env()))
    for key, value in params.as_dbt_env().items():
        typer.echo(f"export {key}='{value}'")
