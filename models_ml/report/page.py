"""`bqx report`: one static page, $BQX_HOME/reports/index.html, over every stage's artifacts.

Reads what the other commands left under $BQX_HOME (reports/ and artifacts/), never
recomputes a model. Images are inlined (base64), so the page is one file that works offline;
the dashboard it links and frames is written next to it. A section whose artifact is missing
says which command makes it ("not run yet: `bqx …`").
"""

from __future__ import annotations

import base64
import html
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from bqx.config import Settings
from models_ml.evaluation.store import HEADLINE, fmt, scoreboard_tables, versus
from models_ml.report.charts import plot_pairs, read_scores

log = logging.getLogger(__name__)

STYLE = """body{font-family:sans-serif;max-width:1300px;margin:1em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;
padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f0f0f0}.missing{color:#a33;font-style:italic}img{max-width:100%}
iframe{width:100%;height:900px;border:1px solid #ccc}nav a{margin-right:1em}"""
SECTIONS = (
    ("scoreboard", "Scoreboard: every stage on common rows, paired intervals"),
    ("success", "Success metrics: plan target vs measured"),
    ("ablation", "Walk-forward ablation (pooled)"),
    ("pairs", "Per pair"),
    ("leadlag", "Lead-lag heatmap"),
    ("autoencoder", "Autoencoder: curves and clusters"),
    ("multitask", "Multi-task nets"),
    ("online", "Online learner: accuracy and drift"),
)


def missing(command: str) -> str:
    return f'<p class="missing">not run yet: <code>{html.escape(command)}</code></p>'


def image(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: str | float | None) -> float | None:
    try:
        return None if value in (None, "", "None") else float(value)
    except ValueError:
        return None


def _rows(scores: dict) -> float:
    return (scores.get("n_rows") or {}).get("value") or 0.0


def _best(pooled: dict, metric: str) -> tuple[str, dict] | None:
    """The best non-baseline stage among those scored on every test minute (the stored
    multi-task and online predictions may cover only part of them: no cherry-picking)."""
    full = max((_rows(scores) for scores in pooled.values()), default=0.0)
    candidates = [
        (name, scores[metric])
        for name, scores in pooled.items()
        if not name.startswith("baseline/")
        and _rows(scores) == full
        and scores.get(metric, {}).get("value") is not None
    ]
    return max(candidates, key=lambda c: c[1]["value"]) if candidates else None


NET = "multitask/multitask_net"
NOT_SCORED = "not measured: run `bqx train multitask`, `bqx predict multitask`, `bqx evaluate`"


def success_section(settings: Settings) -> str:
    reports = settings.reports_dir
    summary = read_json(reports / "evaluation_summary.json") or {}
    pooled = summary.get("pooled", {})
    persistence = pooled.get("baseline/persistence", {})
    rows = []
    for metric, label, target in (
        ("r2", "bqx_t60 R² (walk-forward, pooled)", "0.90"),
        ("directional_accuracy", "directional accuracy of bqx_t60", "0.77"),
        ("sharpe", "annualized Sharpe, sign(pred) held 60 min, net of spread", "2.2"),
    ):
        best = _best(pooled, metric)
        measured = f"{fmt(best[1])} ({best[0]})" if best else "not measured: run `bqx evaluate`"
        rows.append([label, f"{fmt(persistence.get(metric))} (persistence)", target, measured])
    manifest = read_json(settings.artifacts_dir / "autoencoder_manifest.json") or {}
    metrics = manifest.get("metrics", {})
    mae = _number(metrics.get("validation_mae"))
    rows.append(
        [
            "autoencoder reconstruction MAE (validation, scaled inputs)",
            f"{_number(metrics.get('mean_predictor_mae')) or float('nan'):.3f} (mean predictor)"
            if metrics
            else "–",
            "< 0.05",
            f"{mae:.3f}" if mae is not None else "not measured: run `bqx train autoencoder`",
        ]
    )
    embeddings = read_json(reports / "embeddings_summary.json") or {}
    silhouette = _number((embeddings.get("silhouette") or {}).get("value"))
    rows.append(
        [
            "embedding cluster silhouette",
            "–",
            "> 0.4",
            f"{silhouette:.3f}"
            if silhouette is not None
            else "not measured: run `bqx interpret embeddings`",
        ]
    )
    targets = summary.get("targets", {})
    vol = targets.get("vol_t60", {}).get("pooled", {})
    regime = targets.get("regime_t60", {}).get("pooled", {})
    net_vol, net_regime = vol.get(NET, {}), regime.get(NET, {})
    rows.append(
        [
            "vol_t60 R² (multi-task vol head, scoreboard rows, pooled)",
            f"{fmt(vol.get('baseline/har', {}).get('r2'))} (HAR ridge)",
            "> 0.7",
            f"{fmt(net_vol.get('r2'))}; ΔMSE vs HAR {fmt(net_vol.get('dloss_vs_benchmark'))}: "
            f"{versus(net_vol.get('dloss_vs_benchmark'), 'HAR')}"
            if net_vol
            else NOT_SCORED,
        ]
    )
    prior = regime.get("baseline/prior", {})
    rows.append(
        [
            "regime_t60 accuracy (multi-task regime head, scoreboard rows, pooled)",
            f"{fmt(prior.get('accuracy'))} (train prior = majority class); log-loss "
            f"{fmt(prior.get('log_loss'))}; balanced accuracy {fmt(prior.get('balanced_accuracy'))}"
            if prior
            else "–",
            "> 0.70",
            f"{fmt(net_regime.get('accuracy'))}; balanced accuracy "
            f"{fmt(net_regime.get('balanced_accuracy'))}; high_vol recall "
            f"{fmt(net_regime.get('high_vol_recall'))}; log-loss "
            f"{fmt(net_regime.get('log_loss'))}, Δ vs prior "
            f"{fmt(net_regime.get('dloss_vs_reference'), 4)}: "
            f"{versus(net_regime.get('dloss_vs_reference'), 'the train prior')}"
            if net_regime
            else NOT_SCORED,
        ]
    )
    rows.append(["online drift alarm delay", "–", "< 10 min", "not measured (no planted drift)"])
    rows.append(
        ["online model update time", "–", "< 5 s", "not measured here (see bench/results.md)"]
    )
    return table(["metric", "baseline", "plan target", "measured"], rows) + (
        "<p>Targets are the seed plan's hopes; the measured column is this run's artifacts "
        "only. The first three rows give the best stage among those scored on every test "
        "minute of the walk-forward; stages with stored predictions for part of the test "
        "minutes only (multi-task, online) are in the ablation table with their row counts. "
        "The vol_t60 and regime_t60 rows read the scoreboard: the multi-task heads against "
        "the HAR ridge and the train prior on the same rows, with paired intervals, and say "
        "in words what the interval shows: a head beats its baseline only when the interval "
        "lies below 0, and with an interval spanning 0 it neither beats it nor is shown "
        "worse, whatever the point estimate.</p>"
    )


def scoreboard_section(settings: Settings) -> str:
    summary = read_json(settings.reports_dir / "evaluation_summary.json")
    if not summary or "targets" not in summary:
        return missing("bqx evaluate")
    parts = [
        f"<p>Run {html.escape(summary['run_id'])}: {len(summary['pairs'])} pairs, "
        f"{len(summary['folds'])} walk-forward folds. Each target's stages are scored on the "
        "same rows: the minutes where every stage has a prediction (stages trained once on "
        "the train period and early-stopped on the validation period, the embeddings and the "
        "multi-task nets, only from the test start). Δloss: the stage's mean loss minus the "
        "named model's on those rows (squared error; log-loss for the regime), with a 95% "
        "paired stationary block-bootstrap interval (mean block one day of minutes); below 0 "
        "with the interval below 0 means the stage is better. IC: Spearman of forecast and "
        "outcome; ic_mean_pairs and icir_pairs: the mean and mean/sd of the pairs' ICs.</p>"
    ]
    for title, header, rows in scoreboard_tables(summary):
        parts.append(f"<h3>{html.escape(title)}</h3>" + table(header, rows))
    notes = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in summary["notes"].items()
    )
    return "".join(parts) + f"<ul>{notes}</ul>"


def ablation_section(settings: Settings) -> str:
    summary = read_json(settings.reports_dir / "evaluation_summary.json")
    if not summary:
        return missing("bqx evaluate")
    rows = []
    for name in summary["models"]:
        scores = summary["pooled"].get(name)
        stage = name.split("/")[0]
        if scores is None:
            rows.append([name, summary["notes"].get(stage, "not run"), *[""] * (len(HEADLINE) - 1)])
        else:
            digits = {"max_drawdown": 4, "n_rows": 0}
            rows.append([name, *(fmt(scores.get(m), digits.get(m, 3)) for m in HEADLINE)])
    folds = [
        [
            str(f["fold"]),
            f["train_start"][:16],
            f["train_end"][:16],
            f["test_start"][:16],
            f["test_end"][:16],
            f"{f['embargo_minutes']:.0f}",
        ]
        for f in summary["folds"]
    ]
    notes = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in summary["notes"].items()
    )
    return (
        f"<p>Run {html.escape(summary['run_id'])}: {len(summary['pairs'])} pairs, "
        f"{len(summary['folds'])} folds, expanding training windows, 95% block-bootstrap "
        "intervals over 1-day blocks in brackets. Trading: on-the-hour entries, sign(prediction) "
        "held 60 minutes, one spread per trade; the pooled line is the equal-weight portfolio "
        "of the pairs.</p>"
        + table(["stage / model", *HEADLINE], rows)
        + table(["fold", "train from", "train to", "test from", "test to", "embargo (min)"], folds)
        + f"<ul>{notes}</ul>"
    )


def pairs_section(settings: Settings) -> str:
    scores_path = settings.reports_dir / "evaluation.csv"
    if not scores_path.is_file():
        return missing("bqx evaluate")
    chart = plot_pairs(read_scores(scores_path), settings.reports_dir / "evaluation_pairs.png")
    return image(chart, "per-pair scores by stage")


def leadlag_section(settings: Settings) -> str:
    heatmap = settings.reports_dir / "granger_heatmap.png"
    if not heatmap.is_file():
        return missing("bqx granger")
    known = settings.reports_dir / "granger_known_links.md"
    text = f"<pre>{html.escape(known.read_text())}</pre>" if known.is_file() else ""
    return image(heatmap, "Granger lead-lag heatmap") + text


def autoencoder_section(settings: Settings) -> str:
    reports = settings.reports_dir
    parts = [image(reports / "autoencoder_loss.png", "autoencoder loss curves")]
    if not parts[0]:
        return missing("bqx train autoencoder")
    clusters = image(reports / "embeddings_clusters.png", "embedding clusters")
    if clusters:
        parts += [clusters, image(reports / "embeddings_pca_regimes.png", "embeddings by regime")]
        parts.append('<p><a href="embeddings.html">embeddings report</a></p>')
    else:
        parts.append(missing("bqx interpret embeddings"))
    return "".join(parts)


def multitask_section(settings: Settings) -> str:
    reports = settings.reports_dir
    curves = image(reports / "multitask_curves.png", "multi-task training curves")
    if not curves:
        return missing("bqx train multitask")
    pairs = image(reports / "multitask_pairs.png", "multi-task per pair")
    return curves + pairs + '<p><a href="multitask.html">multi-task report</a></p>'


def online_section(settings: Settings) -> str:
    from bqx.dashboard import write_dashboard

    try:
        write_dashboard(settings)
    except Exception as err:  # noqa: BLE001 - the report still renders without a database
        log.warning("dashboard not written: %s", err)
        return (
            missing("bqx online replay")
            + f"<p>(dashboard unavailable: {html.escape(str(err))})</p>"
        )
    if not has_online_predictions(settings):
        return missing("bqx online replay")
    link = '<p><a href="dashboard.html">open the dashboard</a></p>'
    return link + '<iframe src="dashboard.html"></iframe>'


def has_online_predictions(settings: Settings) -> bool:
    from bqx import db

    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('bqx.online_predictions')")
        if cur.fetchone()[0] is None:
            return False
        cur.execute("select exists (select 1 from bqx.online_predictions)")
        return bool(cur.fetchone()[0])


BUILDERS = {
    "scoreboard": scoreboard_section,
    "success": success_section,
    "ablation": ablation_section,
    "pairs": pairs_section,
    "leadlag": leadlag_section,
    "autoencoder": autoencoder_section,
    "multitask": multitask_section,
    "online": online_section,
}


def write_report(settings: Settings) -> Path:
    reports = settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    nav = "".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title in SECTIONS)
    body = "".join(
        f'<section id="{key}"><h2>{html.escape(title)}</h2>{BUILDERS[key](settings)}</section>'
        for key, title in SECTIONS
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>BQX report</title>"
        f"<style>{STYLE}</style></head><body><h1>BQX feature engine: report</h1>"
        f"<p>Written {stamp} from {html.escape(str(settings.home))}.</p><nav>{nav}</nav>"
        f"{body}</body></html>"
    )
    path = reports / "index.html"
    path.write_text(page, encoding="utf-8")
    log.info("report written to %s", path)
    return path
