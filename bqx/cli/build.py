"""`bqx build`, `bqx dbt ...`, `bqx features list`: the dbt project on the database."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated

import typer
from rich.table import Table

from bqx import db
from bqx.cli._shared import PairsOption, console, parse_minute, user_errors
from bqx.config import Settings
from bqx.dbt_runner import BUILD_BUSY, BUILD_LOCK
from bqx.errors import BqxUserError


@user_errors
def build(
    pairs: PairsOption = None,
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
    target: Annotated[
        str | None,
        typer.Option(
            help="profiles.yml output: postgres (default), spark (local session over the "
            "parquet bars) or a cluster output (default: $BQX_DBT_TARGET)."
        ),
    ] = None,
    tail: Annotated[
        bool,
        typer.Option(
            "--tail",
            help="Tail build: append the minutes after the newest built one to every "
            "partitioned table (PostgreSQL), by the same SQL.",
        ),
    ] = False,
    tail_from: Annotated[
        str | None,
        typer.Option(
            help="With --tail: recompute from this minute, 'YYYY-MM-DD HH:MM' UTC (a late bar)."
        ),
    ] = None,
):
    """Run the dbt build (models + tests) against the configured database."""
    from bqx.dbt_runner import (
        POSTGRES_TARGET,
        BuildScope,
        check_spark_raw,
        dbt_target,
        failure_summary,
        run_dbt,
    )

    scope = BuildScope.parse(
        pairs=pairs, months=months, train_end=train_end, validation_end=validation_end
    )
    settings = Settings.from_env()
    chosen = dbt_target(target)
    started = time.time()
    args = ["build", *(["--select", select] if select else [])]
    if chosen != POSTGRES_TARGET and not (tail or tail_from):
        check_spark_raw(settings, chosen)
        code = run_dbt(settings, args, scope=scope, target=target)
        if code != 0:
            raise BqxUserError(failure_summary(settings, chosen, code, started))
        return
    with db.advisory_locks(settings, BUILD_LOCK, ["all"], BUILD_BUSY):
        if tail or tail_from:
            _tail(scope, tail_from)
            return
        _check_bars(settings)
        code = run_dbt(settings, args, scope=scope, target=target)
    if code != 0:
        raise BqxUserError(failure_summary(settings, chosen, code, started))


def _check_bars(settings: Settings) -> None:
    """A build needs bars: say so in one line rather than let dbt print a page of errors."""
    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('raw.m1_bars') is not null")
        has_table = cur.fetchone()[0]
        if has_table:
            cur.execute("select exists (select 1 from raw.m1_bars)")
        if not has_table or not cur.fetchone()[0]:
            raise BqxUserError(
                "raw.m1_bars holds no bars: load some first (`bqx ingest PATH`, or "
                "`bqx synth --out DIR` then `bqx ingest DIR`)"
            )


def _tail(scope, tail_from: str | None) -> None:
    from bqx.tail_build import tail_build

    start = parse_minute(tail_from, "--tail-from") if tail_from else None
    settings = Settings.from_env()
    conn = db.connect(settings)
    try:
        began = time.perf_counter()
        done = tail_build(settings, conn, start, scope, quiet=False)
    finally:
        conn.close()
    if done is None:
        console.print("no bars after the newest built minute: nothing to build")
    else:
        console.print(
            f"tail build from {done:%Y-%m-%d %H:%M} UTC in {time.perf_counter() - began:.1f} s"
        )


@user_errors
def dbt(ctx: typer.Context):
    """Run any dbt command against the configured database: bqx dbt test --select ..."""
    from bqx.dbt_runner import dbt_target, failure_summary, run_dbt

    settings = Settings.from_env()
    started = time.time()
    code = run_dbt(settings, list(ctx.args))
    if code != 0:
        raise BqxUserError(failure_summary(settings, dbt_target(), code, started))


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
