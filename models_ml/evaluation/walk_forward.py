"""Walk-forward evaluation (`bqx evaluate`): every stage of the plan as an ablation.

Reads top to bottom. Load the split and the input columns; lay out the folds (test blocks
after the train period of bqx.ml_periods, expanding training windows, an embargo before each
block); then for each pair: read a training sample and the test minutes, and for each fold fit
every learner on the fold's training rows only and predict its test rows. Stages:

- baseline: zero, persistence (bqx_60 now), ridge on the ten bqx_w values now;
- base: ridge on bqx.ml_feature_matrix; cross_pair: + bqx.ml_cross_pair_features (2.16);
  embeddings: + the 64 autoencoder embeddings (2.17);
- multitask (2.18) and online (2.19): the stored predictions of `bqx predict multitask` and
  `bqx online replay` on the same test minutes (they are not refitted per fold).

Scores, per pair and pooled, go to bqx.evaluation_results and $BQX_HOME/reports/.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import psycopg2.extensions
from threadpoolctl import threadpool_limits

from bqx.errors import BqxUserError
from bqx.feature_reader import ProgressCallback, input_columns
from bqx.pairs import validate_pair
from bqx.periods import load_periods
from models_ml.evaluation.data import HeldOutRows, has_embeddings, read_test_rows, read_train_sample
from models_ml.evaluation.folds import Fold, walk_forward_folds
from models_ml.evaluation.ridge_forecaster import RidgeForecaster
from models_ml.evaluation.scoring import Collector, ResultRow, summarize
from models_ml.evaluation.trading_costs import default_spreads, spread_return

log = logging.getLogger(__name__)

MODELS: tuple[tuple[str, str], ...] = (
    ("baseline", "zero"),
    ("baseline", "persistence"),
    ("baseline", "ridge_bqx"),
    ("base", "ridge"),
    ("cross_pair", "ridge"),
    ("embeddings", "ridge"),
    ("multitask", "multitask_net"),
    ("online", "river_ensemble"),
)
NOT_AVAILABLE = {
    "embeddings": "not available: run `bqx train autoencoder` and `bqx embed`",
    "multitask": "not available: run `bqx train multitask` and `bqx predict multitask`",
    "online": "not available: run `bqx online replay`",
}
PERSISTENCE_FEATURE = "bqx_60"
BQX_WINDOW_FEATURE = re.compile(r"^bqx_\d+$")
MIN_TRAIN_ROWS = 200


@dataclass(frozen=True)
class EvaluationConfig:
    pairs: tuple[str, ...] | None = None  # None: every pair with rows
    folds: int = 3
    train_rows_per_pair: int = 20_000
    spreads: dict[str, float] = field(default_factory=default_spreads)
    bootstrap_resamples: int = 200
    seed: int = 7

    def __post_init__(self) -> None:
        if self.train_rows_per_pair < MIN_TRAIN_ROWS:
            raise BqxUserError(f"--train-rows must be at least {MIN_TRAIN_ROWS}")
        if self.bootstrap_resamples < 0:
            raise BqxUserError("--bootstrap must not be negative")


@dataclass
class EvaluationResult:
    run_id: str
    folds: list[Fold]
    pairs: list[str]
    rows: list[ResultRow]
    notes: dict[str, str]
    seconds: float
    config: EvaluationConfig


def pairs_with_rows(conn: psycopg2.extensions.connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("select distinct pair from bqx.ml_targets order by pair")
        return [pair for (pair,) in cur.fetchall()]


def fold_predictions(
    train_x: dict[str, np.ndarray],
    train_y: np.ndarray,
    test_x: dict[str, np.ndarray],
    persistence: np.ndarray,
    stored: dict[str, np.ndarray],
) -> dict[tuple[str, str], np.ndarray]:
    """Predictions of every model for one fold's test rows, learners fitted on train only."""
    n = len(persistence)
    out = {("baseline", "zero"): np.zeros(n), ("baseline", "persistence"): persistence}
    learners = {"ridge_bqx": ("baseline", "ridge_bqx")}
    for name, x in train_x.items():
        key = learners.get(name, (name, "ridge"))
        if len(train_y) < MIN_TRAIN_ROWS or x is None or test_x[name] is None:
            continue
        out[key] = RidgeForecaster().fit(x, train_y).predict(test_x[name])
    out[("multitask", "multitask_net")] = stored["multitask"]
    out[("online", "river_ensemble")] = stored["online"]
    return out


def feature_sets(rows, bqx_columns: np.ndarray) -> dict[str, np.ndarray | None]:
    """The ablation's inputs: each stage adds a layer to the one before."""
    cross = np.hstack([rows.base, rows.cross])
    return {
        "ridge_bqx": rows.base[:, bqx_columns],
        "base": rows.base,
        "cross_pair": cross,
        "embeddings": None if rows.embeddings is None else np.hstack([cross, rows.embeddings]),
    }


def evaluate(
    conn: psycopg2.extensions.connection,
    config: EvaluationConfig,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    started = time.perf_counter()
    periods = load_periods(conn)
    columns = input_columns(conn)
    base_names = [c.name for c in columns if c.view == "ml_feature_matrix"]
    if PERSISTENCE_FEATURE not in base_names:
        raise BqxUserError(f"bqx.ml_feature_matrix has no {PERSISTENCE_FEATURE}: rebuild it")
    bqx_columns = np.array([i for i, n in enumerate(base_names) if BQX_WINDOW_FEATURE.match(n)])
    persistence_column = base_names.index(PERSISTENCE_FEATURE)
    with conn:
        available = pairs_with_rows(conn)
    pairs = [validate_pair(p) for p in config.pairs] if config.pairs else available
    missing = [p for p in pairs if p not in available]
    if missing or not pairs:
        raise BqxUserError(
            f"no target rows for {', '.join(missing) or 'any pair'}: run `bqx build`"
        )
    folds = walk_forward_folds(
        periods.train.start_utc,
        periods.validation.start_utc,
        periods.test.end_utc,
        config.folds,
        periods.embargo_minutes,
    )
    collector = Collector()
    for done, pair in enumerate(pairs):
        with conn:  # one read-only transaction per pair
            with_embeddings = has_embeddings(conn, pair)
            sample = read_train_sample(
                conn,
                columns,
                pair,
                folds[0].train_start,
                folds[-1].train_end,
                config.train_rows_per_pair,
                config.seed,
                with_embeddings,
            )
            test = read_test_rows(
                conn, columns, pair, folds[0].test_start, folds[-1].test_end, with_embeddings
            )
        with threadpool_limits(1):  # small matrices: BLAS threads only contend on a busy machine
            for fold in folds:
                score_fold(
                    collector, pair, fold, sample, test, bqx_columns, persistence_column, config
                )
                if progress:
                    total = len(pairs) * len(folds)
                    progress("evaluating folds × pairs", done * len(folds) + fold.number, total)
    rows = summarize(collector, list(MODELS), config.bootstrap_resamples, config.seed)
    found = {(r.stage, r.model) for r in rows}
    notes = {
        stage: NOT_AVAILABLE[stage]
        for stage, model in MODELS
        if stage in NOT_AVAILABLE and (stage, model) not in found
    }
    if ("multitask", "multitask_net") in found:
        notes["multitask"] = (
            "stored predictions of nets trained once on the train period of bqx.ml_periods "
            "(early-stopped on its validation period), scored on each fold's test minutes"
        )
    if ("online", "river_ensemble") in found:
        notes["online"] = "stored prequential predictions of `bqx online replay` (where it ran)"
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    seconds = time.perf_counter() - started
    log.info("evaluated %d pairs × %d folds in %.1f s", len(pairs), len(folds), seconds)
    return EvaluationResult(run_id, folds, pairs, rows, notes, seconds, config)


def score_fold(
    collector: Collector,
    pair: str,
    fold: Fold,
    sample,
    test: HeldOutRows,
    bqx_columns: np.ndarray,
    persistence_column: int,
    config: EvaluationConfig,
) -> None:
    train = fold.train_mask(sample.ts_epoch)
    rows_in = fold.test_mask(test.rows.ts_epoch)
    if not rows_in.any():
        log.warning("%s has no test rows in fold %d", pair, fold.number)
        return
    train_x = {
        k: None if v is None else v[train] for k, v in feature_sets(sample, bqx_columns).items()
    }
    test_x = {
        k: None if v is None else v[rows_in]
        for k, v in feature_sets(test.rows, bqx_columns).items()
    }
    predictions = fold_predictions(
        train_x,
        sample.target[train],
        test_x,
        test.rows.base[rows_in, persistence_column].astype(np.float64),
        {"multitask": test.multitask[rows_in], "online": test.online[rows_in]},
    )
    cost = spread_return(pair, config.spreads[pair], test.close[rows_in])
    for key, prediction in predictions.items():
        collector.add(
            key,
            pair,
            fold.number,
            ts_epoch=test.rows.ts_epoch[rows_in],
            target=test.rows.target[rows_in],
            prediction=prediction,
            log_return=test.log_return[rows_in],
            cost=cost,
        )
