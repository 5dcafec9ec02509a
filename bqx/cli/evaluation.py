"""`bqx evaluate` and `bqx report` (registered in bqx/cli/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bqx.cli._shared import (
    PairsOption,
    SeedOption,
    console,
    count_option,
    database_step,
    user_errors,
    with_defaults,
)
from bqx.config import Settings


@user_errors
def evaluate(
    pairs: PairsOption = None,
    folds: count_option("Walk-forward folds (default 3).") = None,
    train_rows: count_option("Training sample per pair, seeded (default 20000).") = None,
    spread_config: Annotated[
        Path | None,
        typer.Option(help="CSV `pair,spread_pips` overriding the default spreads."),
    ] = None,
    bootstrap: count_option("Block-bootstrap resamples (0: none; default 200).") = None,
    stages: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated stages on the scoreboard besides the baselines, e.g. "
            "base,cross_pair,embeddings,multitask (default: every stage with predictions; "
            "all are scored on their common rows, so a short online replay narrows them)."
        ),
    ] = None,
    seed: SeedOption = None,
):
    """Walk-forward scoreboard of every stage and baseline for bqx_t60, vol_t60 and regime_t60
    on common rows, with paired intervals → bqx.evaluation_results, reports/."""
    from bqx.pairs import parse_pairs
    from models_ml.evaluation.store import (
        scoreboard_tables,
        summary_of,
        write_reports,
        write_table,
    )
    from models_ml.evaluation.trading_costs import load_spreads
    from models_ml.evaluation.walk_forward import EvaluationConfig
    from models_ml.evaluation.walk_forward import evaluate as run_evaluation

    config = with_defaults(
        EvaluationConfig,
        pairs=tuple(parse_pairs(pairs)) if pairs else None,
        folds=folds,
        train_rows_per_pair=train_rows,
        spreads=load_spreads(spread_config),
        bootstrap_resamples=bootstrap,
        seed=seed,
        stages=tuple(s.strip() for s in stages.split(",") if s.strip()) if stages else None,
    )
    with database_step() as (settings, conn, on_step):
        result = run_evaluation(conn, config, on_step)
        stored = write_table(conn, result)
    paths = write_reports(result, settings.reports_dir)
    for title, header, rows in scoreboard_tables(summary_of(result)):
        table = Table(
            title=f"{title}: {len(result.pairs)} pairs × {config.folds} folds, common rows"
        )
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for stage, note in result.notes.items():
        console.print(f"{stage}: {note}", highlight=False)
    console.print(
        f"run {result.run_id}: {stored:,} rows in bqx.evaluation_results in "
        f"{result.seconds:.0f} s; with 95% intervals: {paths['markdown']}",
        highlight=False,
    )


@user_errors
def report():
    """One static page of every stage's results → $BQX_HOME/reports/index.html."""
    from models_ml.report.page import write_report

    path = write_report(Settings.from_env())
    console.print(f"report: {path}", highlight=False)
