"""The `bqx` command line. The only place that prints; user errors become one line + exit 1."""

from __future__ import annotations

import functools
import logging
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bqx import db
from bqx.config import Settings
from bqx.errors import BqxUserError

app = typer.Typer(
    help="BQX feature engine: FX 1-minute bars → features → models.", no_args_is_help=True
)
db_app = typer.Typer(
    help="The database: embedded PostgreSQL or BQX_DATABASE_URL.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
features_app = typer.Typer(help="The feature matrix.", no_args_is_help=True)
app.add_typer(features_app, name="features")

console = Console()
err_console = Console(stderr=True)


def user_errors(func):
    """Turn BqxUserError into one clear line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BqxUserError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


# ---------------------------------------------------------------------------- db
@db_app.command("start")
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


@db_app.command("stop")
@user_errors
def db_stop():
    """Stop the embedded PostgreSQL."""
    settings = Settings.from_env()
    if settings.database_url:
        raise BqxUserError("BQX_DATABASE_URL is set: that server is not ours to stop")
    stopped = db.stop_embedded(settings)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
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


@db_app.command("url")
@user_errors
def db_url():
    """Print the database URL (starting the embedded server if needed)."""
    typer.echo(db.database_url(Settings.from_env()))


@db_app.command("env")
@user_errors
def db_env():
    """Print shell exports that let plain `dbt` reach the database: eval "$(bqx db env)"."""
    params = db.parse_database_url(db.database_url(Settings.from_env()))
    for key, value in params.as_dbt_env().items():
        typer.echo(f"export {key}='{value}'")


# ---------------------------------------------------------------------------- synth
@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/synth"),
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-01",
    days: Annotated[int, typer.Option(help="Calendar days.")] = 21,
    pairs: Annotated[
        str | None, typer.Option(help="Comma-separated pairs (default all 28).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
):
    """Write a generated market: <PAIR>.csv.gz for each pair and ground_truth.json."""
    from bqx.pairs import parse_pairs
    from bqx.synth import SynthConfig, write_market

    config = SynthConfig(
        start=parse_date(start), days=days, pairs=tuple(parse_pairs(pairs)), seed=seed
    )
    with console.status(f"generating {len(config.pairs)} pairs × {days} days"):
        truth = write_market(config, out)
    links = ", ".join(
        f"{link['leader']}→{link['follower']} {link['lag_minutes']}m" for link in truth["links"]
    )
    console.print(f"wrote {len(config.pairs)} pair files and ground_truth.json to {out}")
    console.print(f"planted lead-lag links: {links}")


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BqxUserError(f"bad date {text!r}: use YYYY-MM-DD") from None


# ---------------------------------------------------------------------------- ingest
@app.command()
@user_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Bar files or directories.")],
    file_format: Annotated[
        str, typer.Option("--format", help="auto | generic | histdata")
    ] = "auto",
    tz: Annotated[
        str | None,
        typer.Option(help="Clock of the file (default: America/New_York for HistData, UTC else)."),
    ] = None,
    pair: Annotated[str | None, typer.Option(help="Pair, when the file name does not say.")] = None,
):
    """Load bar files into raw.m1_bars; bad lines go to raw.m1_bars_rejected."""
    from bqx.ingest import expand_paths, ingest_file
    from bqx.pairs import validate_pair

    if pair:
        validate_pair(pair)
    files = expand_paths(paths)
    settings = Settings.from_env()
    conn = db.connect(settings)
    results = []
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} files"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("ingesting", total=len(files))
            for path in files:
                progress.update(task, description=f"ingesting {path.name}")
                results.append(ingest_file(conn, path, file_format=file_format, pair=pair, tz=tz))
                progress.advance(task)
    finally:
        conn.close()
        if results:
            console.print(_ingest_summary(results))
            rejections = _rejections_table(results)
            if rejections is not None:
                console.print(rejections)


def _ingest_summary(results) -> Table:
    table = Table(title="ingest summary")
    for name in ["file", "format", "read", "loaded", "duplicates", "rejected"]:
        table.add_column(name, justify="left" if name in ("file", "format") else "right")
    for r in results:
        counts = (r.rows_read, r.rows_loaded, r.rows_duplicate, r.rows_rejected)
        table.add_row(r.source, r.file_format, *(f"{v:,}" for v in counts))
    if len(results) > 1:
        totals = [
            sum(getattr(r, name) for r in results)
            for name in ("rows_read", "rows_loaded", "rows_duplicate", "rows_rejected")
        ]
        table.add_row("total", "", *(f"{v:,}" for v in totals), style="bold")
    return table


def _rejections_table(results) -> Table | None:
    by_reason: Counter = Counter()
    for r in results:
        by_reason.update(r.rejected_by_reason)
    if not by_reason:
        return None
    table = Table(title="rejected lines by reason (see raw.m1_bars_rejected)")
    table.add_column("reason")
    table.add_column("lines", justify="right")
    for reason, n in by_reason.most_common():
        table.add_row(reason, f"{n:,}")
    return table


# ---------------------------------------------------------------------------- build
@app.command()
@user_errors
def build(
    pairs: Annotated[str | None, typer.Option(help="Comma-separated pairs (default all).")] = None,
    months: Annotated[
        str | None, typer.Option(help="Rebuild only these months: YYYY-MM..YYYY-MM.")
    ] = None,
    select: Annotated[str | None, typer.Option(help="dbt node selection.")] = None,
    train_end: Annotated[
        str | None,
        typer.Option(help="Pin the end of the train period, YYYY-MM-DD (default: 60% of data)."),
    ] = None,
    validation_end: Annotated[
        str | None,
        typer.Option(help="Pin the end of the validation period, YYYY-MM-DD (default: 80%)."),
    ] = None,
):
    """Run the dbt build (models + tests) against the configured database."""
    from bqx.dbt_runner import BuildScope, run_dbt

    scope = BuildScope.parse(
        pairs=pairs, months=months, train_end=train_end, validation_end=validation_end
    )
    args = ["build", *(["--select", select] if select else [])]
    code = run_dbt(Settings.from_env(), args, scope=scope)
    if code != 0:
        raise typer.Exit(code)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@user_errors
def dbt(ctx: typer.Context):
    """Run any dbt command against the configured database: bqx dbt test --select ..."""
    from bqx.dbt_runner import run_dbt

    code = run_dbt(Settings.from_env(), list(ctx.args))
    if code != 0:
        raise typer.Exit(code)


# ---------------------------------------------------------------------------- features
@features_app.command("list")
@user_errors
def features_list(
    columns: Annotated[bool, typer.Option("--columns", help="List every column.")] = False,
):
    """Families and column count of bqx.ml_feature_matrix, read from the database."""
    from bqx.features import family_of, matrix_columns

    with db.connect(Settings.from_env()) as conn:
        found = matrix_columns(conn)
    if not found:
        raise BqxUserError("bqx.ml_feature_matrix does not exist yet: run `bqx build` first")
    if columns:
        for column in found:
            typer.echo(f"{column.name}\t{column.data_type}")
        return
    families = Counter(family_of(column.name) for column in found)
    table = Table(title="bqx.ml_feature_matrix")
    table.add_column("family")
    table.add_column("columns", justify="right")
    for family, n in families.items():
        table.add_row(family, str(n))
    console.print(table)
    console.print(f"{len(found)} feature columns (plus pair, ts_utc)")


def run() -> None:  # pragma: no cover - console entry for `python -m bqx`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
