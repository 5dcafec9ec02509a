"""`bqx granger`: lead-lag tests of sister pairs on the train period (links for 2.16)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bqx.cli._shared import (
    PairsOption,
    console,
    count_option,
    database_step,
    grid,
    user_errors,
    with_defaults,
)

GRANGER_TABLE_ROWS = 40


@user_errors
def granger(
    pairs: PairsOption = None,
    max_lag: Annotated[
        int | None,
        typer.Option(
            help="Longest lag tested, in minutes (default 15; at most the dbt var "
            "max_lead_lag_minutes)."
        ),
    ] = None,
    max_rows: count_option("Most recent training rows per ordered pair (default 60000).") = None,
    workers: count_option("Worker processes (default 2).") = None,
    vol_window: Annotated[
        int | None,
        typer.Option(
            help="Scale changes by their trailing RMS over N minutes (0: raw; default 30)."
        ),
    ] = None,
):
    """Granger lead-lag tests of sister pairs on the train period → bqx.lead_lag_relationships.

    The false discovery rate is the dbt var lead_lag_alpha (dbt_project.yml): the lead-lag
    model and its data test read the same number, so change it there.
    """
    from bqx.pairs import parse_pairs
    from models_ml.granger.discovery import GrangerConfig, discover, write_results
    from models_ml.granger.report import write_heatmap, write_known_links

    config = with_defaults(
        GrangerConfig,
        pairs=tuple(parse_pairs(pairs)),
        max_lag=max_lag,
        max_rows=max_rows,
        workers=workers,
        vol_window=vol_window,
    )
    labels = {"reading": "reading bqx_60", "testing": "testing ordered pairs"}
    with database_step(labels) as (settings, conn, on_step):
        result = discover(conn, config, on_step)
        write_results(conn, result, config.pairs)
    heatmap = write_heatmap(result, settings.reports_dir / "granger_heatmap.png")
    known = write_known_links(result, settings.reports_dir / "granger_known_links.md")
    console.print(_granger_table(result))
    links = result.relationships
    if len(links) > GRANGER_TABLE_ROWS:
        console.print(f"… and {len(links) - GRANGER_TABLE_ROWS} more in bqx.lead_lag_relationships")
    console.print(
        f"{len(links)} of {len(result.best)} ordered sister pairs significant "
        f"({len(result.tests):,} tests, train period {result.train.start_utc:%Y-%m-%d %H:%M} "
        f"to {result.train.end_utc:%Y-%m-%d %H:%M} UTC)"
    )
    for leader, follower, reason in result.skipped:
        console.print(f"not tested: {leader} → {follower} ({reason})")
    console.print(f"heatmap: {heatmap}\nknown links: {known}", highlight=False)


def _granger_table(result) -> Table:
    from models_ml.granger.report import summary_rows

    table = grid(
        f"lead-lag relationships (FDR {result.alpha:g}), strongest first",
        ["leader", "follower", "lag (min)", "F", "p_adjusted", "effect size"],
        left=2,
    )
    for row in summary_rows(result, limit=GRANGER_TABLE_ROWS):
        table.add_row(*row)
    return table
