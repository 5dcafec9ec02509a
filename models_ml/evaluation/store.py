"""Where `bqx evaluate` writes: bqx.evaluation_results (long format, one row per run, stage,
model, pair, fold and metric; runs accumulate) and $BQX_HOME/reports/evaluation.csv,
evaluation_summary.json (the run's folds, notes and pooled scores) and evaluation.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg2.extensions
from psycopg2.extras import execute_values

from bqx.sql import apply_ddl
from models_ml.evaluation.scoring import ALL_FOLDS, POOLED, ResultRow
from models_ml.evaluation.walk_forward import MODELS, EvaluationResult

FIELDS = ("stage", "model", "pair", "fold", "metric", "value", "ci_low", "ci_high")
HEADLINE = ("r2", "directional_accuracy", "ic", "sharpe", "hit_rate", "max_drawdown", "n_rows")


def write_table(conn: psycopg2.extensions.connection, result: EvaluationResult) -> int:
    with conn, conn.cursor() as cur:
        apply_ddl(cur, "evaluation")
        execute_values(
            cur,
            "insert into bqx.evaluation_results (run_id, stage, model, pair, fold, metric, "
            "value, ci_low, ci_high) values %s",
            [(result.run_id, *(getattr(r, f) for f in FIELDS)) for r in result.rows],
            page_size=2000,
        )
    return len(result.rows)


def pooled(rows: list[ResultRow]) -> dict[str, dict[str, dict]]:
    """{"stage/model": {metric: {value, ci_low, ci_high}}} of the pooled, all-fold rows."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r.pair == POOLED and r.fold == ALL_FOLDS:
            out.setdefault(f"{r.stage}/{r.model}", {})[r.metric] = {
                "value": r.value,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
            }
    return out


def write_reports(result: EvaluationResult, reports_dir: Path) -> dict[str, Path]:
    reports_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": reports_dir / "evaluation.csv",
        "summary": reports_dir / "evaluation_summary.json",
        "markdown": reports_dir / "evaluation.md",
    }
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        writer.writerows([getattr(r, f) for f in FIELDS] for r in result.rows)
    summary = {
        "run_id": result.run_id,
        "pairs": result.pairs,
        "folds": [
            {
                "fold": f.number,
                "train_start": f.train_start.isoformat(),
                "train_end": f.train_end.isoformat(),
                "test_start": f.test_start.isoformat(),
                "test_end": f.test_end.isoformat(),
                "embargo_minutes": f.embargo.total_seconds() / 60,
            }
            for f in result.folds
        ],
        "train_rows_per_pair": result.config.train_rows_per_pair,
        "bootstrap_resamples": result.config.bootstrap_resamples,
        "spread_pips": {p: result.config.spreads[p] for p in result.pairs},
        "notes": result.notes,
        "models": [f"{stage}/{model}" for stage, model in MODELS],
        "pooled": pooled(result.rows),
        "seconds": result.seconds,
    }
    paths["summary"].write_text(json.dumps(summary, indent=2))
    paths["markdown"].write_text(markdown_table(summary))
    return paths


def fmt(cell: dict | None, digits: int = 3) -> str:
    if not cell or cell.get("value") is None:
        return "–"

    def number(value: float) -> str:  # counts with separators; a diverging R² as 1.2e+21
        if digits == 0:
            return f"{value:,.0f}"
        return f"{value:.2e}" if abs(value) >= 1e4 else f"{value:.{digits}f}"

    text = number(cell["value"])
    if cell.get("ci_low") is not None and cell.get("ci_high") is not None:
        text += f" [{number(cell['ci_low'])}, {number(cell['ci_high'])}]"
    return text


def markdown_table(summary: dict) -> str:
    """The pooled ablation table (95% block-bootstrap intervals in brackets)."""
    lines = [
        f"# Walk-forward evaluation {summary['run_id']}",
        "",
        f"{len(summary['pairs'])} pairs, {len(summary['folds'])} folds; pooled over pairs and "
        "folds, 95% block-bootstrap intervals (1-day blocks) in brackets.",
        "",
        "| stage / model | " + " | ".join(HEADLINE) + " |",
        "|---|" + "---|" * len(HEADLINE),
    ]
    for name in summary["models"]:
        scores = summary["pooled"].get(name)
        stage = name.split("/")[0]
        if scores is None:
            note = summary["notes"].get(stage, "not run")
            lines.append(f"| {name} | {note} |" + " |" * (len(HEADLINE) - 1))
            continue
        digits = {"max_drawdown": 4, "n_rows": 0}
        cells = [fmt(scores.get(m), digits.get(m, 3)) for m in HEADLINE]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", *(f"- {stage}: {note}" for stage, note in summary["notes"].items()), ""]
    return "\n".join(lines)
