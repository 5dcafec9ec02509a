"""Charts of the walk-forward evaluation for the report (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

R2_FLOOR = -1.0
PANELS = (
    ("r2", f"R² of bqx_t60 (below {R2_FLOOR:g} drawn at {R2_FLOOR:g})"),
    ("directional_accuracy", "directional accuracy"),
    ("sharpe", "annualized Sharpe, net of spread"),
)
SHOWN = (
    "baseline/persistence",
    "baseline/ridge_bqx",
    "base/ridge",
    "cross_pair/ridge",
    "embeddings/ridge",
    "multitask/multitask_net",
    "online/river_ensemble",
)


def read_scores(path: Path) -> dict[tuple[str, str, str], float]:
    """{(stage/model, pair, metric): value} of the all-fold rows of evaluation.csv."""
    out: dict[tuple[str, str, str], float] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("target", "bqx_t60") != "bqx_t60":
                continue
            if row["fold"] == "all" and row["value"] not in ("", "None"):
                out[(f"{row['stage']}/{row['model']}", row["pair"], row["metric"])] = float(
                    row["value"]
                )
    return out


def plot_pairs(scores: dict[tuple[str, str, str], float], path: Path) -> Path:
    """One panel per metric: grouped bars of each pair (and ALL) by stage."""
    pairs = sorted({p for _, p, _ in scores if p != "ALL"}) + ["ALL"]
    models = [m for m in SHOWN if any(k[0] == m for k in scores)]
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(13, 3.2 * len(PANELS)), sharex=True)
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(pairs))
    for axis, (metric, title) in zip(axes, PANELS, strict=True):
        for i, model in enumerate(models):
            values = np.array([scores.get((model, p, metric), np.nan) for p in pairs])
            if metric == "r2":
                values = np.maximum(values, R2_FLOOR)  # one diverging model must not hide the rest
            axis.bar(x + (i - len(models) / 2 + 0.5) * width, values, width, label=model)
        axis.axhline(0.5 if metric == "directional_accuracy" else 0.0, color="grey", lw=0.8)
        axis.set_title(title, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=4, loc="lower left")
    axes[-1].set_xticks(x, pairs, rotation=60, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
