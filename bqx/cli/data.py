"""`bqx synth`, `bqx ingest`, `bqx export-parquet`: bars into the raw layer or parquet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bqx import db
from bqx.cli._shared import PairsOption, console, grid, parse_date, progress, user_errors
from bqx.config import Settings
from bqx.errors import BqxUserError


@user_errors
def synth(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/synth"),
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-01",
    days: Annotated[int, typer.Option(help="Calendar days.")] = 21,
    pairs: PairsOption = None,
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
    to: Annotated[
        str,
        typer.Option(
            help="postgres: raw.m1_bars; parquet: files partitioned by pair and month for the "
            "spark target, under BQX_SPARK_RAW_PATH (default $BQX_HOME/spark/raw)."
        ),
    ] = "postgres",
):
    """Load bar files into raw.m1_bars; bad lines go to raw.m1_bars_rejected."""
    from bqx.ingest.loader import expand_paths, ingest_file
    from bqx.pairs import validate_pair

    if to not in ("postgres", "parquet"):
        raise BqxUserError(f"unknown --to {to!r}: use postgres or parquet")
    if pair:
        validate_pair(pair)
    files = expand_paths(paths)
    settings = Settings.from_env()
    if to == "parquet":
        _ingest_to_parquet(
            settings, files, file_format=file_format, pair=pair, tz=tz, rules=settings.bar_rules
        )
        return
    conn = db.connect(settings)
    results = []
    try:
        with progress("files") as display:
            task = display.add_task("ingesting", total=len(files))
            for path in files:
                display.update(task, description=f"ingesting {path.name}")
                results.append(
                    ingest_file(
                        conn,
                        path,
                        file_format=file_format,
                        pair=pair,
                        tz=tz,
                        rules=settings.bar_rules,
                    )
                )
                display.advance(task)
    finally:
        conn.close()
        if results:
            console.print(_ingest_summary(results))
            rejections = _rejections_table(results)
            if rejections is not None:
                console.print(rejections)


def _ingest_to_parquet(settings: Settings, files: list[Path], **options) -> None:
    from bqx.dbt_runner import SparkPaths
    from bqx.ingest.parquet_store import ParquetStore, ingest_file_to_parquet

    store = ParquetStore(Path(SparkPaths.of(settings).raw))
    results = []
    with progress("files") as display:
        task = display.add_task("writing parquet", total=len(files))
        for path in files:
            display.update(task, description=f"parquet {path.name}")
            results.append(ingest_file_to_parquet(store, path, **options))
            display.advance(task)
    console.print(_ingest_summary(results))
    rejections = _rejections_table(results)
    if rejections is not None:
        rejections.title = f"rejected lines by reason (see {store.rejected_dir})"
        console.print(rejections)
    console.print(f"bars under {store.bars_dir}: `bqx build --target spark` reads them")


def _ingest_summary(results) -> Table:
    table = grid(
        "ingest summary", ["file", "format", "read", "loaded", "duplicates", "rejected"], left=2
    )
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


@user_errors
def export_parquet(
    out: Annotated[
        Path | None,
        typer.Option(help="Parquet root (default BQX_SPARK_RAW_PATH, else $BQX_HOME/spark/raw)."),
    ] = None,
    pairs: PairsOption = None,
):
    """Copy raw.m1_bars (and bqx.lead_lag_relationships) to parquet for the spark target."""
    from bqx.dbt_runner import SparkPaths
    from bqx.ingest.parquet_store import ParquetStore, export_from_postgres
    from bqx.pairs import parse_pairs

    settings = Settings.from_env()
    store = ParquetStore(out or Path(SparkPaths.of(settings).raw))
    chosen = tuple(parse_pairs(pairs)) if pairs else ()
    conn = db.connect(settings)
    try:
        with console.status("exporting raw.m1_bars to parquet"):
            result = export_from_postgres(conn, store, chosen)
    finally:
        conn.close()
    console.print(
        f"wrote {result.rows:,} bars of {len(result.pairs)} pairs in {result.partitions} "
        f"(pair, month) partitions under {store.bars_dir}"
    )
    if result.lead_lag_rows is None:
        console.print(
            "no bqx.lead_lag_relationships yet (run `bqx granger`): lead-lag slots stay 0"
        )
    else:
        console.print(f"wrote {result.lead_lag_rows} Granger links under {store.lead_lag_dir}")
