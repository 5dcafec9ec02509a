"""What every command module of the CLI shares: the consoles, the one error path, progress
bars, the database step of long commands, dates, and config defaults.

Command modules import this module and never `bqx.cli` itself, so the package has no import
cycle: `bqx/cli/__init__.py` imports the command modules and registers their functions.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

import psycopg2
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bqx import db
from bqx.config import Settings
from bqx.errors import BqxUserError

# Options that most commands share; None means "the config's default" (see with_defaults).
PairsOption = Annotated[
    str | None, typer.Option(help="Comma-separated pairs, e.g. EURUSD,GBPUSD (default: all).")
]
SeedOption = Annotated[int | None, typer.Option(help="Random seed (default 7).")]


def count_option(help_text: str):
    """An optional integer option (rows, epochs, ...) whose default lives in the config."""
    return Annotated[int | None, typer.Option(help=help_text)]


console = Console()
err_console = Console(stderr=True)

Config = TypeVar("Config")


def user_errors(func: Callable) -> Callable:
    """The one error path of the CLI: a BqxUserError becomes one clear line on stderr and exit
    code 1, no traceback; so does a database connection lost mid-command (a stopped server).
    Commands turn the other mistakes a user can make (a port already taken, say) into a
    BqxUserError where they happen. Any URL password in the line is redacted."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BqxUserError as err:
            _error_line(str(err))
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            # the server stopped or dropped us mid-command: a fact of the setup, not a bug
            _error_line(f"lost the database connection: {db.first_line(err)}")

    return wrapper


def _error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {db.redact(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1) from None


def with_defaults(config_type: type[Config], **options: Any) -> Config:
    """The dataclass config with the options the user gave; an option left at None takes the
    dataclass default, so each default is written once (in the config)."""
    given = {name: value for name, value in options.items() if value is not None}
    known = {field.name for field in dataclasses.fields(config_type)}
    unknown = set(given) - known
    if unknown:  # a programming error, not a user's: fail loudly
        raise TypeError(f"{config_type.__name__} has no field {sorted(unknown)}")
    return config_type(**given)


def progress(unit: str = "") -> Progress:
    """The progress display of every long command: description, bar, count, elapsed time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}" + (f" {unit}" if unit else "")),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def stage_bars(display: Progress, labels: dict[str, str] | None = None):
    """A ProgressCallback (stage, done, total) drawing one bar per stage."""
    bars: dict[str, int] = {}
    labels = labels or {}

    def on_step(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = display.add_task(labels.get(stage, stage), total=total)
        display.update(bars[stage], completed=done)

    return on_step


@contextmanager
def database_step(labels: dict[str, str] | None = None) -> Iterator[tuple]:
    """(settings, connection, progress callback) for a long command on the configured
    database; the bars go away and the connection is closed when the block ends."""
    settings = Settings.from_env()
    conn = db.connect(settings)
    try:
        with progress() as display:
            yield settings, conn, stage_bars(display, labels)
    finally:
        conn.close()


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BqxUserError(f"bad date {text!r}: use YYYY-MM-DD") from None


def parse_minute(text: str, option: str) -> datetime:
    """A UTC minute given as 'YYYY-MM-DD HH:MM' (the form of --tail-from and --until)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise BqxUserError(f"bad {option} {text!r}: use 'YYYY-MM-DD HH:MM' (UTC)") from None


def grid(title: str, columns: list[str], left: int = 1) -> Table:
    """An empty table with these columns: the first `left` hold names, the rest numbers."""
    table = Table(title=title)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < left else "right")
    return table


def value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column table (what, value) of a command's summary."""
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def pace_rows(result, latency: str, seconds: list[float], high: float) -> list[tuple[str, str]]:
    """The time, minutes/s and latency rows of a minute-by-minute run (feed, replay); the
    latency row ('<latency> p50 / p<high>') only when there were steps."""
    rows = [("time", f"{result.seconds:.1f} s"), ("minutes/s", f"{result.minutes_per_second:,.1f}")]
    if seconds:
        rows.append((f"{latency} p50 / p{round(high * 100)}", latency_ms(seconds, high)))
    return rows


def latency_ms(seconds: list[float], high: float) -> str:
    """'p50 / p<high> ms' of durations in seconds (the median, and the nearest-rank quantile)."""
    ordered = sorted(seconds)
    top = ordered[min(len(ordered) - 1, int(high * len(ordered)))]
    return f"{statistics.median(ordered) * 1e3:.1f} / {top * 1e3:.1f} ms"


def verdict(passed: bool) -> str:
    return "[green]pass[/]" if passed else "[red]FAIL[/]"
