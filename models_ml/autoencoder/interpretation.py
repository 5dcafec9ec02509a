"""What the 64 embedding dimensions mean, and whether they help: `bqx interpret embeddings`.

Reads the embeddings back from bqx.autoencoder_embeddings (what later stages will read), with
the input features and, for interpretation only, the targets of bqx.ml_targets, on a seeded
hash sample of the train and validation periods (never the test period):

- KMeans (k = 10, seeded) fitted on the train sample; silhouette and cluster profiles
  (mean vol_60 and bqx_60, regime_t60 shares) on the validation sample;
- for each dimension, the base feature (bqx.ml_feature_matrix) with the largest |Pearson r|;
- a 2-D PCA map of validation embeddings coloured by regime_t60;
- a ridge regression of bqx_t60 on [scaled features + embeddings] fitted on the train sample
  and permutation importance on the validation sample: the share of embedding dimensions
  among the top 20% of inputs, beside its chance level (64 / number of inputs), and the
  validation R² with and without the embeddings. The check counts as passed only when the
  ridge has out-of-sample skill (validation R² > 0): the ranking of a model that predicts
  worse than a constant says nothing about the inputs.

Every figure goes to reports/embeddings.html (PNGs beside it) and embeddings_summary.json,
with pass/fail against the plan's targets. Permutation importance splits credit between
correlated inputs, so many near-duplicate features (and embedding dimensions that mirror them)
each look less important than the group they belong to.
"""

from __future__ import annotations

import html
import json
import logging
import math
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg2.extensions
from psycopg2 import sql
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.inspection import permutation_importance
from sklearn.linear_model import RidgeCV
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import (
    SCHEMA,
    ExtraColumns,
    InputColumn,
    InputSample,
    ProgressCallback,
    input_columns,
    sample_input,
)
from bqx.pairs import PAIRS, validate_pair
from bqx.periods import load_periods
from models_ml.autoencoder.embeddings import EMBEDDING_COLUMNS, TABLE, writer_of
from models_ml.autoencoder.manifest import (
    RECONSTRUCTION_MAE_TARGET,
    AutoencoderArtifacts,
    check_features,
    load_manifest,
)
from models_ml.common.preprocessing import standardize

log = logging.getLogger(__name__)

SILHOUETTE_TARGET = 0.4
TARGET_COLUMNS = ("bqx_t60", "regime_t60_code")
PROFILE_FEATURES = ("vol_60", "bqx_60")


@dataclass(frozen=True)
class InterpretationConfig:
    sample_rows: int = 20_000  # train period: KMeans, correlations, ridge
    validation_rows: int = 10_000  # validation period: silhouette, profiles, importance
    clusters: int = 10
    silhouette_rows: int = 10_000
    top_share: float = 0.2
    permutation_repeats: int = 3
    seed: int = 7
    pairs: tuple[str, ...] = PAIRS

    def __post_init__(self) -> None:
        if self.clusters < 2:
            raise BqxUserError("clusters must be at least 2")
        if not 0 < self.top_share <= 1:
            raise BqxUserError("top share must lie in (0, 1]")
        object.__setattr__(self, "pairs", tuple(validate_pair(p) for p in self.pairs))


@dataclass(frozen=True)
class Sample:
    """Features, embeddings and targets of the same (pair, minute) rows."""

    features: np.ndarray
    embeddings: np.ndarray
    bqx_t60: np.ndarray
    regime_code: np.ndarray


@dataclass(frozen=True)
class InterpretationResult:
    summary: dict
    html: Path
    summary_path: Path


def interpret(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: InterpretationConfig,
    progress: ProgressCallback | None = None,
) -> InterpretationResult:
    """Sample, cluster, correlate, rank, plot and write the report."""
    artifacts = AutoencoderArtifacts.of(settings)
    manifest = load_manifest(artifacts)
    columns = input_columns(conn)
    check_features(manifest, columns)
    _check_writer(conn, config.pairs, manifest)
    scaler = pickle.loads(artifacts.scaler.read_bytes())
    periods = load_periods(conn)
    train = _sample(conn, columns, periods.train, config.sample_rows, config, progress)
    validation = _sample(
        conn, columns, periods.validation, config.validation_rows, config, progress
    )
    labels = regime_labels(conn)
    rng = np.random.default_rng(config.seed)

    kmeans = KMeans(n_clusters=config.clusters, random_state=config.seed, n_init=10)
    kmeans.fit(train.embeddings)
    clusters = kmeans.predict(validation.embeddings)
    shown = rng.permutation(len(validation.bqx_t60))[: config.silhouette_rows]
    silhouette = (
        float(silhouette_score(validation.embeddings[shown], clusters[shown]))
        if len(np.unique(clusters[shown])) > 1
        else float("nan")
    )
    names = [c.name for c in columns]
    profiles = cluster_profiles(validation, clusters, config.clusters, names, labels)
    dimensions = top_correlated_features(train, columns)
    importance = embedding_importance(train, validation, scaler, names, config)

    reports = settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    images = {
        "pca": plot_pca(validation, shown, labels, reports / "embeddings_pca_regimes.png"),
        "clusters": plot_clusters(profiles, labels, reports / "embeddings_clusters.png"),
        "importance": plot_importance(importance, reports / "embeddings_importance.png"),
    }
    summary = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_sha256": manifest.get("artifacts", {}).get("model_sha256"),
        "config": asdict(config),
        "rows": {"train": len(train.bqx_t60), "validation": len(validation.bqx_t60)},
        "silhouette": {"value": silhouette, "rows": len(shown), "clusters": config.clusters},
        "clusters": profiles,
        "dimensions": dimensions,
        "importance": {k: v for k, v in importance.items() if k != "ranking"},
        "top_inputs": importance["ranking"][:30],
        "targets": _targets(manifest, silhouette, importance),
        "images": {k: v.name for k, v in images.items()},
    }
    summary_path = reports / "embeddings_summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    page = reports / "embeddings.html"
    page.write_text(render_html(summary, manifest, labels))
    return InterpretationResult(summary, page, summary_path)


def _check_writer(conn, pairs: Sequence[str], manifest: dict) -> None:
    sha = manifest.get("artifacts", {}).get("model_sha256", "unknown")
    stale = [p for p in pairs if writer_of(conn, p) != f"autoencoder sha256 {sha}"]
    if stale:
        raise BqxUserError(
            f"{SCHEMA}.{TABLE} of {', '.join(stale[:5])}{' …' if len(stale) > 5 else ''} "
            "was not written by the current autoencoder: run `bqx embed` first"
        )


def _sample(conn, columns, period, rows, config, progress) -> Sample:
    extras = [
        ExtraColumns(
            TABLE, tuple(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in EMBEDDING_COLUMNS)
        ),
        ExtraColumns(
            "ml_targets",
            tuple(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in TARGET_COLUMNS),
        ),
    ]
    sample: InputSample = sample_input(
        conn, columns, period, rows, config.seed, config.pairs, progress, extras
    )
    assert sample.extras is not None
    width = len(EMBEDDING_COLUMNS)
    return Sample(
        features=sample.features,
        embeddings=sample.extras[:, :width],
        bqx_t60=sample.extras[:, width].astype(np.float64),
        regime_code=sample.extras[:, width + 1].astype(np.int64),
    )


def regime_labels(conn: psycopg2.extensions.connection) -> dict[int, str]:
    """regime_code → label from the dbt seed regime_thresholds (codes alone if it is absent)."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass('bqx.regime_thresholds')")
        if cur.fetchone()[0] is None:
            return {code: f"regime {code}" for code in range(6)}
        cur.execute("select regime_code, regime from bqx.regime_thresholds order by regime_code")
        return {int(code): str(label) for code, label in cur.fetchall()}


def cluster_profiles(
    sample: Sample, clusters: np.ndarray, k: int, names: list[str], labels: dict[int, str]
) -> list[dict]:
    """Per cluster: size, mean vol_60 / bqx_60 and the share of each regime_t60."""
    index = {name: names.index(name) for name in PROFILE_FEATURES if name in names}
    out = []
    for cluster in range(k):
        rows = clusters == cluster
        n = int(rows.sum())
        profile = {"cluster": cluster, "rows": n, "share": n / max(len(clusters), 1)}
        for name, i in index.items():
            profile[f"mean_{name}"] = float(sample.features[rows, i].mean()) if n else None
        profile["regime_shares"] = {
            label: float((sample.regime_code[rows] == code).mean()) if n else 0.0
            for code, label in labels.items()
        }
        out.append(profile)
    return out


def top_correlated_features(sample: Sample, columns: Sequence[InputColumn]) -> list[dict]:
    """For each embedding dimension, the base feature with the largest |Pearson r|."""
    base = [i for i, c in enumerate(columns) if c.view == "ml_feature_matrix"]
    corr = correlation_matrix(sample.embeddings, sample.features[:, base])
    out = []
    for dim, row in enumerate(corr):
        best = int(np.argmax(np.abs(row)))
        out.append(
            {
                "dimension": EMBEDDING_COLUMNS[dim],
                "feature": columns[base[best]].name,
                "r": float(row[best]),
            }
        )
    return out


def correlation_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation of every column of a with every column of b; constant columns give 0."""

    def z(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        std = x.std(axis=0)
        return np.where(std > 0, (x - x.mean(axis=0)) / np.where(std > 0, std, 1), 0.0)

    return z(a).T @ z(b) / len(a)


def embedding_importance(
    train: Sample, validation: Sample, scaler, names: list[str], config: InterpretationConfig
) -> dict:
    """Ridge of bqx_t60 on [features + embeddings]; permutation importance on validation."""
    embedding_scaler = StandardScaler().fit(train.embeddings)

    def inputs(sample: Sample) -> np.ndarray:
        return np.hstack(
            [standardize(scaler, sample.features), embedding_scaler.transform(sample.embeddings)]
        )

    x_train, x_validation = inputs(train), inputs(validation)
    alphas = np.logspace(-3, 4, 15)
    model = RidgeCV(alphas=alphas).fit(x_train, train.bqx_t60)
    features_only = RidgeCV(alphas=alphas).fit(x_train[:, : len(names)], train.bqx_t60)
    result = permutation_importance(
        model,
        x_validation,
        validation.bqx_t60,
        n_repeats=config.permutation_repeats,
        random_state=config.seed,
    )
    all_names = names + list(EMBEDDING_COLUMNS)
    order = np.argsort(-result.importances_mean)
    top_n = max(1, math.ceil(config.top_share * len(all_names)))
    top = set(order[:top_n].tolist())
    in_top = sum(1 for i in top if i >= len(names))
    return {
        "inputs": len(all_names),
        "top_n": top_n,
        "embeddings_in_top": in_top,
        "embedding_share_of_top": in_top / top_n,
        "chance_share": len(EMBEDDING_COLUMNS) / len(all_names),
        "ridge_alpha": float(model.alpha_),
        "validation_r2_with_embeddings": float(model.score(x_validation, validation.bqx_t60)),
        "validation_r2_features_only": float(
            features_only.score(x_validation[:, : len(names)], validation.bqx_t60)
        ),
        "ranking": [
            {
                "input": all_names[i],
                "importance": float(result.importances_mean[i]),
                "is_embedding": bool(i >= len(names)),
            }
            for i in order
        ],
    }


def _targets(manifest: dict, silhouette: float, importance: dict) -> dict:
    mae = manifest["metrics"]["validation_mae"]
    share = importance["embedding_share_of_top"]
    # a ranking of a model without out-of-sample skill says nothing, whatever its shares
    skill = importance["validation_r2_with_embeddings"]
    return {
        "reconstruction_mae": {
            "target": f"< {RECONSTRUCTION_MAE_TARGET}",
            "value": mae,
            "passed": mae < RECONSTRUCTION_MAE_TARGET,
        },
        "beats_mean_predictor": {
            "target": f"< mean predictor {manifest['metrics']['mean_predictor_mae']:.4f}",
            "value": mae,
            "passed": mae < manifest["metrics"]["mean_predictor_mae"],
        },
        "silhouette": {
            "target": f"> {SILHOUETTE_TARGET}",
            "value": silhouette,
            "passed": bool(silhouette > SILHOUETTE_TARGET),
        },
        "embeddings_in_top_20pct": {
            "target": "embedding dimensions among the top 20% of inputs of a ridge with "
            f"validation R² > 0 (chance share {importance['chance_share']:.3f})",
            "value": share,
            "passed": importance["embeddings_in_top"] > 0 and skill > 0,
        },
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pca(sample: Sample, shown: np.ndarray, labels: dict[int, str], path: Path) -> Path:
    plt = _pyplot()
    points = PCA(n_components=2, random_state=0).fit_transform(sample.embeddings[shown])
    codes = sample.regime_code[shown]
    fig, axis = plt.subplots(figsize=(7, 6))
    # the commonest regime first, so rare regimes stay visible on top; colours as in clusters
    for code in sorted(labels, key=lambda c: -int((codes == c).sum())):
        rows = codes == code
        if rows.any():
            axis.scatter(
                points[rows, 0],
                points[rows, 1],
                s=4,
                alpha=0.5,
                color=f"C{code}",
                label=labels[code],
            )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_title("validation embeddings, PCA, coloured by regime_t60")
    axis.legend(markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_clusters(profiles: list[dict], labels: dict[int, str], path: Path) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(profiles))
    bottom = np.zeros(len(profiles))
    for code, label in labels.items():
        shares = np.array([p["regime_shares"][label] for p in profiles])
        left.bar(x, shares, bottom=bottom, color=f"C{code}", label=label)
        bottom += shares
    left.set_xlabel("cluster")
    left.set_ylabel("share of rows")
    left.set_title("regime_t60 mix per cluster (validation)")
    left.legend(fontsize=8)
    for offset, name in ((-0.2, "mean_vol_60"), (0.2, "mean_bqx_60")):
        right.bar(x + offset, [p.get(name) or 0.0 for p in profiles], width=0.4, label=name)
    right.set_xlabel("cluster")
    right.set_title("mean vol_60 and bqx_60 per cluster (validation)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_importance(importance: dict, path: Path, shown: int = 30) -> Path:
    plt = _pyplot()
    top = importance["ranking"][:shown][::-1]
    fig, axis = plt.subplots(figsize=(8, 0.28 * len(top) + 1.5))
    colours = ["tab:orange" if t["is_embedding"] else "tab:blue" for t in top]
    axis.barh([t["input"] for t in top], [t["importance"] for t in top], color=colours)
    axis.set_xlabel("permutation importance (drop in validation R²)")
    axis.set_title("ridge of bqx_t60: top inputs (orange = embedding)")
    axis.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_html(summary: dict, manifest: dict, labels: dict[int, str]) -> str:
    """A static page: targets with pass/fail, the figures, clusters and dimensions."""
    esc = html.escape

    def row(cells: Sequence[object], tag: str = "td") -> str:
        return "<tr>" + "".join(f"<{tag}>{esc(_fmt(c))}</{tag}>" for c in cells) + "</tr>"

    targets = "".join(
        row([name, t["target"], t["value"], "pass" if t["passed"] else "FAIL"])
        for name, t in summary["targets"].items()
    )
    regimes = list(labels.values())
    clusters = "".join(
        row(
            [
                p["cluster"],
                p["rows"],
                p.get("mean_vol_60"),
                p.get("mean_bqx_60"),
                *(p["regime_shares"][r] for r in regimes),
            ]
        )
        for p in summary["clusters"]
    )
    dims = "".join(row([d["dimension"], d["feature"], d["r"]]) for d in summary["dimensions"])
    imp = summary["importance"]
    training = manifest["training"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BQX autoencoder embeddings</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;
text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Autoencoder embeddings (stage 2.17)</h1>
<p>Model sha256 {esc(str(summary["model_sha256"]))}, {manifest["input_width"]} inputs → 64
dimensions, trained {esc(manifest["created_utc"])} on {manifest["samples"]["train"]["rows"]:,}
train-period rows ({training["epochs_run"]} epochs, best {training["best_epoch"]}).
Interpretation sample: {summary["rows"]["train"]:,} train and
{summary["rows"]["validation"]:,} validation rows (the test period is not read).</p>
<h2>Targets</h2><table>{row(["check", "target", "value", "result"], "th")}{targets}</table>
<p>Reconstruction errors are in standardized units on the validation sample; the mean
predictor reconstructs every row as the train mean (all zeros).</p>
<h2>Clusters</h2>
<p>KMeans, k = {summary["silhouette"]["clusters"]}, fitted on train embeddings; silhouette
{_fmt(summary["silhouette"]["value"])} on {summary["silhouette"]["rows"]:,} validation rows.</p>
<img src="{summary["images"]["clusters"]}" alt="cluster profiles">
<table>{row(["cluster", "rows", "mean vol_60", "mean bqx_60", *regimes], "th")}{clusters}</table>
<h2>PCA map</h2><img src="{summary["images"]["pca"]}" alt="PCA of embeddings by regime">
<h2>Do the embeddings help predict bqx_t60?</h2>
<p>Ridge (alpha {_fmt(imp["ridge_alpha"])}) on {imp["inputs"]} inputs; validation R²
{_fmt(imp["validation_r2_with_embeddings"])} with embeddings,
{_fmt(imp["validation_r2_features_only"])} features only. {imp["embeddings_in_top"]} of the
top {imp["top_n"]} inputs by permutation importance are embedding dimensions (share
{_fmt(imp["embedding_share_of_top"])}; chance {_fmt(imp["chance_share"])}). A ranking is
only worth reading when the validation R² is above 0: below, the ridge predicts bqx_t60 worse
than its validation mean, and permuting an input mostly measures how it spreads the errors.</p>
<img src="{summary["images"]["importance"]}" alt="permutation importance">
<h2>Dimensions</h2><p>The base feature each dimension correlates with most (train sample).</p>
<table>{row(["dimension", "feature", "Pearson r"], "th")}{dims}</table>
</body></html>
"""


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)
