"""`bqx feed`: play bars into raw.m1_bars minute by minute, as a live feed would."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from bqx import db
from bqx.cli._shared import (
    PairsOption,
    console,
    pace_rows,
    parse_date,
    progress,
    user_errors,
    value_table,
)
from bqx.config import Settings
from bqx.errors import BqxUserError


@user_errors
def feed(
    source: Annotated[
        Path | None,
        typer.Option("--from", help="Bar files or a directory of them (what `bqx synth` writes)."),
    ] = None,
    synth: Annotated[
        bool, typer.Option("--synth", help="Generate the market (bqx synth's) and play it.")
    ] = False,
    pairs: PairsOption = None,
    speed: Annotated[
        float,
        typer.Option(help="Market minutes per wall-clock minute; 0 plays as fast as possible."),
    ] = 1.0,
    start: Annotated[
        str | None,
        typer.Option(help="First day, YYYY-MM-DD (default: the files' first; --synth 2024-01-01)."),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Calendar days to play (default: all of the files; --synth 1)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of --synth.")] = 7,
):
    """Play bars into raw.m1_bars one minute at a time, all pairs of a minute in one commit."""
    from bqx.ingest.feed import play, quarantine, read_bars
    from bqx.pairs import parse_pairs

    if (source is None) == (not synth):
        raise BqxUserError("give either --from DIR or --synth")
    if speed < 0:
        raise BqxUserError(f"--speed must be 0 (as fast as possible) or more, got {speed}")
    if days is not None and days < 1:
        raise BqxUserError(f"--days must be at least 1, got {days}")
    chosen = tuple(parse_pairs(pairs))
    first_day = parse_date(start) if start else None
    with tempfile.TemporaryDirectory(prefix="bqx-feed-") as scratch:
        if synth:
            from bqx.synth import SynthConfig, write_market

            first_day = first_day or parse_date("2024-01-01")
            days = days or 1
            config = SynthConfig(start=first_day, days=days, pairs=chosen, seed=seed)
            with console.status(f"generating {len(chosen)} pairs × {days} days"):
                write_market(config, Path(scratch))
            source = Path(scratch)
        span_start = (
            datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
            if first_day
            else None
        )
        span_end = span_start + timedelta(days=days) if span_start and days else None
        with console.status(f"reading {source}"):
            bars, parsed = read_bars([source], chosen if pairs else (), span_start, span_end)
        settings = Settings.from_env()
        conn = db.connect(settings)
        try:
            rejected = quarantine(conn, parsed)
            total = bars["ts_utc"].nunique()
            with progress("minutes") as display:
                task = display.add_task("feeding raw.m1_bars", total=total)

                def on_minute(done: int, _total: int, ts: datetime) -> None:
                    display.update(task, completed=done, description=f"fed {ts:%Y-%m-%d %H:%M}")

                result = play(conn, bars, speed=speed, on_minute=on_minute)
        finally:
            conn.close()
    result.rejected = rejected
    rows = [
        ("minutes", f"{result.minutes:,}"),
        ("first / last minute", f"{result.first:%Y-%m-%d %H:%M} / {result.last:%Y-%m-%d %H:%M}"),
        ("bars inserted", f"{result.bars:,}"),
        ("already present (left as they were)", f"{result.duplicates:,}"),
        ("lines refused (raw.m1_bars_rejected)", f"{result.rejected:,}"),
        *pace_rows(result, "commit per minute", result.commit_seconds, 0.99),
    ]
    console.print(value_table(f"feed ({len(set(bars['pair']))} pairs, speed {speed:g})", rows))
