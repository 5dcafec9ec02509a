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

HEADLINE = ("r2", "directional_accuracy", "ic", "sharpe", "hit_rate", "max_drawdown")


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
    seed: SeedOption = None,
):
    """Walk-forward ablation of every stage and baselines → bqx.evaluation_results, reports/."""
    from bqx.pairs import parse_pairs
    from models_ml.evaluation.store import pooled, write_reports, write_table
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
    )
    with database_step() as (settings, conn, on_step):
        result = run_evaluation(conn, config, on_step)
        stored = write_table(conn, result)
    paths = write_reports(result, settings.reports_dir)
    table = Table(
        title=f"walk-forward, pooled over {len(result.pairs)} pairs × {config.folds} folds"
    )
    table.add_column("stage / model")
    for name in HEADLINE:
        table.add_column(name, justify="right")
    scores = pooled(result.rows)
    for name, metrics in scores.items():
        values = [metrics.get(m, {}).get("value") for m in HEADLINE]
        table.add_row(name, *("–" if v is None else f"{v:.3f}" for v in values))
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
