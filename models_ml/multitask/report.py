"""The ablation report of stage 2.18 under `$BQX_HOME/reports/`.

- `multitask_ablation.csv`: one row per (pair, model) with the test-period scores, plus
  rows `pair = "average"` (mean over pairs);
- `multitask_curves.png`: training curves of the three tasks averaged over pairs;
- `multitask_pairs.png`: per-pair comparison of bqx MAE / R² and regime accuracy;
- `multitask.html` and `multitask.md`: the tables, the plan's targets, the verdict.
"""

from __future__ import annotations

import csv
import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models_ml.multitask.scoring import BASELINES

if TYPE_CHECKING:
    from models_ml.multitask.training import MultitaskResult

log = logging.getLogger(__name__)

MODELS = ("multi_task", "single_task", *BASELINES)
METRICS = (
    "bqx_mae",
    "bqx_r2",
    "bqx_directional",
    "vol_r2",
    "vol_mae",
    "regime_accuracy",
    "regime_balanced_accuracy",
    "regime_macro_f1",
    "regime_log_loss",
    "high_vol_recall",
)
VOL_R2_TARGET = 0.7
REGIME_ACCURACY_TARGET = 0.7


def _mean(values) -> float:
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else float("nan")


def _mean_or_none(values: list) -> float | None:
    """The mean over pairs; None where the model has no such head."""
    return None if all(v is None for v in values) else _mean(values)


def ablation_rows(result: MultitaskResult) -> list[dict]:
    """Per (pair, model) test scores, then the averages over pairs per model."""
    rows = []
    for pair in result.pairs:
        for model in MODELS:
            s = pair.scores[model]
            rows.append(
                {"pair": pair.pair, "model": model}
                | {m: getattr(s, m) for m in METRICS}
                | {"majority_rate": pair.majority_rate, "test_rows": pair.rows["test"]}
            )
    for model in MODELS:
        mine = [r for r in rows if r["model"] == model]
        rows.append(
            {"pair": "average", "model": model}
            | {m: _mean_or_none([r[m] for r in mine]) for m in (*METRICS, "majority_rate")}
            | {"test_rows": sum(r["test_rows"] for r in mine)}
        )
    return rows


def verdicts(result: MultitaskResult) -> dict[str, object]:
    """Whether multi-task beats single-task (test bqx MAE), and the plan's targets."""
    wins = [
        p.pair
        for p in result.pairs
        if p.scores["multi_task"].bqx_mae < p.scores["single_task"].bqx_mae
    ]
    mt = [p.scores["multi_task"] for p in result.pairs]
    return {
        "pairs": len(result.pairs),
        "multi_task_beats_single_task_pairs": len(wins),
        "multi_task_beats_single_task": len(wins) > len(result.pairs) / 2,
        "multi_task_beats_ridge_pairs": sum(
            p.scores["multi_task"].bqx_mae < p.scores["ridge"].bqx_mae for p in result.pairs
        ),
        "mean_vol_r2": _mean(s.vol_r2 for s in mt),
        "vol_r2_target_met": _mean(s.vol_r2 for s in mt) > VOL_R2_TARGET,
        "mean_vol_r2_har": _mean(p.scores["har"].vol_r2 for p in result.pairs),
        "mean_vol_r2_persistence": _mean(p.scores["persistence"].vol_r2 for p in result.pairs),
        "multi_task_vol_beats_har_pairs": sum(
            p.scores["multi_task"].vol_r2 > p.scores["har"].vol_r2 for p in result.pairs
        ),
        "mean_regime_accuracy": _mean(s.regime_accuracy for s in mt),
        "mean_majority_rate": _mean(p.majority_rate for p in result.pairs),
        "mean_regime_balanced_accuracy": _mean(s.regime_balanced_accuracy for s in mt),
        "mean_regime_log_loss": _mean(s.regime_log_loss for s in mt),
        "mean_prior_log_loss": _mean(p.scores["train_mean"].regime_log_loss for p in result.pairs),
        "regime_log_loss_beats_prior_pairs": sum(
            p.scores["multi_task"].regime_log_loss < p.scores["train_mean"].regime_log_loss
            for p in result.pairs
        ),
        "mean_high_vol_recall": _mean(s.high_vol_recall for s in mt),
        "regime_accuracy_target_met": _mean(s.regime_accuracy for s in mt) > REGIME_ACCURACY_TARGET,
        "regime_beats_majority_pairs": sum(
            p.scores["multi_task"].regime_accuracy > p.majority_rate for p in result.pairs
        ),
        "mean_training_seconds_per_pair": _mean(sum(p.seconds.values()) for p in result.pairs),
    }


def write_report(result: MultitaskResult, reports: Path) -> dict[str, Path]:
    reports.mkdir(parents=True, exist_ok=True)
    rows = ablation_rows(result)
    paths = {
        "csv": reports / "multitask_ablation.csv",
        "curves": reports / "multitask_curves.png",
        "pairs": reports / "multitask_pairs.png",
        "html": reports / "multitask.html",
        "markdown": reports / "multitask.md",
    }
    with paths["csv"].open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_curves(result, paths["curves"])
    plot_pairs(result, paths["pairs"])
    summary = verdicts(result)
    markdown = _markdown(result, rows, summary)
    paths["markdown"].write_text(markdown)
    paths["html"].write_text(_html(result, rows, summary))
    log.info("multi-task report in %s", paths["html"])
    return paths


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _table(rows: list[dict], columns: list[str]) -> list[list[str]]:
    return [[_fmt(r[c]) for c in columns] for r in rows]


def _markdown(result: MultitaskResult, rows: list[dict], summary: dict) -> str:
    columns = ["pair", "model", *METRICS, "majority_rate", "test_rows"]
    lines = ["# Stage 2.18: multi-task nets, test period", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table(rows, columns)]
    lines += ["", "## Verdict", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in summary.items()]
    lines += ["", f"## Regime classes ({len(result.classes)} softmax units)", ""]
    lines += ["| pair | " + " | ".join(result.classes) + " | rows |"]
    lines += ["|" + "---|" * (len(result.classes) + 2)]
    for pair, shares in result.class_frequencies.items():
        cells = [f"{shares[c]:.3f}" for c in result.classes] + [str(shares["rows"])]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _html(result: MultitaskResult, rows: list[dict], summary: dict) -> str:
    columns = ["pair", "model", *METRICS, "majority_rate", "test_rows"]

    def table(header: list[str], body: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
        )
        return f"<table><tr>{head}</tr>{cells}</table>"

    freq_rows = [
        [pair, *[f"{shares[c]:.3f}" for c in result.classes], str(shares["rows"])]
        for pair, shares in result.class_frequencies.items()
    ]
    verdict = [[k, _fmt(v)] for k, v in summary.items()]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>BQX stage 2.18: multi-task nets</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style></head><body>
<h1>Stage 2.18: per-pair multi-task nets (test period)</h1>
<p>Targets bqx_t60, vol_t60, regime_t60 at t+60 from bqx.ml_targets; models scored once on the
test period of bqx.ml_periods. Baselines and scalers fitted on the train period: zero,
train_mean (the train means and majority class), persistence (bqx_60 now; the realised vol of
the last 60 minutes), a HAR ridge for vol (realised vol now, vol_30/60/240/630, the
calendar columns of time_features) and a ridge on every input.
Regime head: {len(result.classes)} softmax units, one per label classify_regime can return
({", ".join(result.classes)}).</p>
<h2>Verdict</h2>{table(["check", "value"], verdict)}
<h2>Ablation</h2>{table(columns, _table(rows, columns))}
<h2>Regime class frequencies (bqx.ml_targets, all periods)</h2>
{table(["pair", *result.classes, "rows"], freq_rows)}
<h2>Training curves (averaged over pairs)</h2><img src="multitask_curves.png">
<h2>Per pair</h2><img src="multitask_pairs.png">
</body></html>
"""


def _averaged(histories: list[dict[str, list[float]]], key: str) -> np.ndarray:
    """Mean over pairs per epoch (pairs that stopped earlier drop out)."""
    series = [h[key] for h in histories if key in h]
    if not series:
        return np.array([])
    length = max(len(s) for s in series)
    padded = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        padded[i, : len(s)] = s
    return np.nanmean(padded, axis=0)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(result: MultitaskResult, path: Path) -> None:
    plt = _pyplot()
    histories = [p.histories["multi_task"] for p in result.pairs]
    single = [p.histories["single_task"] for p in result.pairs]
    panels = [
        ("bqx head: MAE (standardized)", "bqx_mae"),
        ("vol head: MSE (standardized log vol)", "vol_loss"),
        ("regime head: accuracy", "regime_sparse_categorical_accuracy"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, (title, key) in zip(axes, panels, strict=True):
        for prefix, style, label in (
            ("", "-", "multi-task train"),
            ("val_", "--", "multi-task val"),
        ):
            values = _averaged(histories, prefix + key)
            axis.plot(np.arange(1, len(values) + 1), values, style, label=label)
        if key == "bqx_mae":
            values = _averaged(single, "val_bqx_mae")
            axis.plot(np.arange(1, len(values) + 1), values, ":", label="single-task val")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_pairs(result: MultitaskResult, path: Path) -> None:
    plt = _pyplot()
    pairs = [p.pair for p in result.pairs]
    panels = [
        ("bqx MAE (test)", "bqx_mae"),
        ("bqx R² (test)", "bqx_r2"),
        ("regime accuracy", "regime_accuracy"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(max(12, len(pairs) * 1.2), 4))
    width = 0.8 / len(MODELS)
    positions = np.arange(len(pairs))
    for axis, (title, metric) in zip(axes, panels, strict=True):
        for i, model in enumerate(MODELS):
            values = [getattr(p.scores[model], metric) for p in result.pairs]
            values = [np.nan if v is None else v for v in values]
            axis.bar(positions + i * width, values, width, label=model)
        if metric == "regime_accuracy":
            axis.plot(
                positions + 0.4,
                [p.majority_rate for p in result.pairs],
                "k_",
                markersize=14,
                label="majority",
            )
        axis.set_xticks(positions + 0.4, pairs, rotation=90)
        axis.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
