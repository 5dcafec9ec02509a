"""Walk-forward evaluation (`bqx evaluate`): every stage of the plan, for bqx_t60, vol_t60 and
regime_t60, on one scoreboard.

Reads top to bottom. Load the split and the input columns; lay out the folds (test blocks
after the train period of bqx.ml_periods, expanding training windows, an embargo before each
block); then for each pair: read a training sample and the test minutes, and for each fold fit
every learner on the fold's training rows only and predict its test rows. Stages (TARGETS):

- baseline: bqx_t60 zero, persistence (bqx_60 now), ridge on the ten bqx_w values; vol_t60
  train mean, persistence (the realised vol of the last hour), HAR ridge; regime_t60 the
  train prior;
- base: ridge (logit for the regime) on bqx.ml_feature_matrix; cross_pair: + the cross-pair
  features (2.16); embeddings: + the 64 autoencoder embeddings (2.17);
- multitask (2.18) and online (2.19): the stored predictions of `bqx predict multitask` and
  `bqx online replay` on the same test minutes (they are not refitted per fold).

Stages trained once on the train period and early-stopped on the validation period (the
autoencoder behind the embeddings, the multi-task nets) are masked before the test start:
fold 1 of the default 3 lies inside the validation period, where the old walk-forward scored
them. scoring.py then scores every stage of a target on the rows common to all of them.
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
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bqx.errors import BqxUserError
from bqx.feature_reader import ProgressCallback, input_columns
from bqx.pairs import validate_pair
from bqx.periods import load_periods
from models_ml.evaluation.data import (
    HeldOutRows,
    PairRows,
    has_embeddings,
    read_test_rows,
    read_train_sample,
)
from models_ml.evaluation.folds import Fold, walk_forward_folds
from models_ml.evaluation.ridge_forecaster import RidgeForecaster
from models_ml.evaluation.scoring import Block, Collector, Key, ResultRow, TargetSpec, summarize
from models_ml.evaluation.trading_costs import default_spreads, spread_return
from models_ml.multitask.data import regime_classes
from models_ml.multitask.scoring import HarRidge, har_columns

log = logging.getLogger(__name__)

BQX_MODELS: tuple[Key, ...] = (
    ("baseline", "zero"),
    ("baseline", "persistence"),
    ("baseline", "ridge_bqx"),
    ("base", "ridge"),
    ("cross_pair", "ridge"),
    ("embeddings", "ridge"),
    ("multitask", "multitask_net"),
    ("online", "river_ensemble"),
)
VOL_MODELS: tuple[Key, ...] = (
    ("baseline", "train_mean"),
    ("baseline", "persistence"),
    ("baseline", "har"),
    ("base", "ridge"),
    ("cross_pair", "ridge"),
    ("embeddings", "ridge"),
    ("multitask", "multitask_net"),
)
REGIME_MODELS: tuple[Key, ...] = (
    ("baseline", "prior"),
    ("base", "logit"),
    ("cross_pair", "logit"),
    ("embeddings", "logit"),
    ("multitask", "multitask_net"),
)
TARGETS = (
    TargetSpec("bqx_t60", "regression", BQX_MODELS, ("baseline", "zero")),
    TargetSpec(
        "vol_t60", "regression", VOL_MODELS, ("baseline", "train_mean"), ("baseline", "har")
    ),
    TargetSpec("regime_t60", "classification", REGIME_MODELS, ("baseline", "prior")),
)
MODELS = BQX_MODELS  # the bqx_t60 ablation's stages, as before
# trained once on the train period and early-stopped on the validation period (the
# autoencoder behind the embeddings, the multi-task nets): scored only from the test start
ONCE_TRAINED_STAGES = ("embeddings", "multitask")
NOT_AVAILABLE = {
    "embeddings": "not available: run `bqx train autoencoder` and `bqx embed`",
    "multitask": "not available: run `bqx train multitask` and `bqx predict multitask`",
    "online": "not available: run `bqx online replay`",
}
PERSISTENCE_FEATURE = "bqx_60"
BQX_WINDOW_FEATURE = re.compile(r"^bqx_\d+$")
MIN_TRAIN_ROWS = 200
LOGIT_C = 0.05  # strong L2: hundreds of correlated inputs, a few thousand rows per class
LOGIT_ITERATIONS = 200


@dataclass(frozen=True)
class EvaluationConfig:
    pairs: tuple[str, ...] | None = None  # None: every pair with rows
    folds: int = 3
    train_rows_per_pair: int = 20_000
    spreads: dict[str, float] = field(default_factory=default_spreads)
    bootstrap_resamples: int = 200
    seed: int = 7
    # stages on the scoreboard (the baselines always are); None: every stage that has
    # predictions. A stage that covers part of the span (an online replay of two days)
    # narrows every stage's common rows to that part: leave it out to score the others widely
    stages: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.train_rows_per_pair < MIN_TRAIN_ROWS:
            raise BqxUserError(f"--train-rows must be at least {MIN_TRAIN_ROWS}")
        if self.bootstrap_resamples < 0:
            raise BqxUserError("--bootstrap must not be negative")
        known = sorted({stage for spec in TARGETS for stage, _ in spec.models} - {"baseline"})
        unknown = sorted(set(self.stages or ()) - set(known))
        if unknown:
            raise BqxUserError(
                f"unknown stage(s) {', '.join(unknown)} for --stages; known: {', '.join(known)}"
            )

    def scores(self, stage: str) -> bool:
        return stage == "baseline" or self.stages is None or stage in self.stages


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


def regime_probabilities(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """Multinomial logistic regression on standardised inputs (NaN → the training mean),
    fitted on the fold's training rows; (n, classes) probabilities by regime code."""
    y = y_train.astype(np.int64)
    model = make_pipeline(
        SimpleImputer(keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=LOGIT_C, max_iter=LOGIT_ITERATIONS, random_state=seed),
    ).fit(np.nan_to_num(x_train, nan=np.nan, posinf=np.nan, neginf=np.nan), y)
    proba = np.zeros((len(x_test), n_classes))
    found = model.predict_proba(np.nan_to_num(x_test, nan=np.nan, posinf=np.nan, neginf=np.nan))
    proba[:, model.classes_] = found
    return proba


def prior_probabilities(y_train: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    """The fold's training class shares, add-one smoothed, for every test row."""
    counts = np.bincount(y_train.astype(np.int64), minlength=n_classes)
    return np.tile((counts + 1.0) / (counts.sum() + n_classes), (n, 1))


def fold_predictions(
    train: PairRows,
    test: PairRows,
    bqx_columns: np.ndarray,
    persistence_column: int,
    har: tuple[int, ...],
    n_classes: int,
    stored: dict[str, np.ndarray],
    seed: int,
) -> dict[str, dict[Key, np.ndarray]]:
    """Predictions of every model of every target for one fold's test rows; learners are
    fitted on the fold's training rows only."""
    n = len(test)
    out: dict[str, dict[Key, np.ndarray]] = {spec.name: {} for spec in TARGETS}
    bqx, vol, regime = out["bqx_t60"], out["vol_t60"], out["regime_t60"]
    bqx[("baseline", "zero")] = np.zeros(n)
    bqx[("baseline", "persistence")] = test.base[:, persistence_column].astype(np.float64)
    train_x, test_x = feature_sets(train, bqx_columns), feature_sets(test, bqx_columns)
    enough = len(train) >= MIN_TRAIN_ROWS
    known_vol = np.isfinite(train.vol)
    vol_mean = float(np.mean(train.vol[known_vol])) if known_vol.any() else float("nan")
    vol[("baseline", "train_mean")] = np.full(n, vol_mean)
    vol[("baseline", "persistence")] = _filled(test.vol_now, vol_mean)
    known_regime = np.isfinite(train.regime)
    regime[("baseline", "prior")] = prior_probabilities(train.regime[known_regime], n, n_classes)
    if enough and known_vol.sum() >= MIN_TRAIN_ROWS:
        vol[("baseline", "har")] = (
            HarRidge(har)
            .fit(
                train.base[known_vol],
                _filled(train.vol_now[known_vol], vol_mean),
                train.vol[known_vol],
            )
            .predict(test.base, _filled(test.vol_now, vol_mean))
        )
    for name, x in train_x.items():
        if not enough or x is None or test_x[name] is None:
            continue
        if name == "ridge_bqx":
            bqx[("baseline", "ridge_bqx")] = (
                RidgeForecaster().fit(x, train.target).predict(test_x[name])
            )
            continue
        bqx[(name, "ridge")] = RidgeForecaster().fit(x, train.target).predict(test_x[name])
        if known_vol.sum() >= MIN_TRAIN_ROWS:
            vol[(name, "ridge")] = (
                RidgeForecaster().fit(x[known_vol], train.vol[known_vol]).predict(test_x[name])
            )
        if len(np.unique(train.regime[known_regime])) > 1:
            regime[(name, "logit")] = regime_probabilities(
                x[known_regime], train.regime[known_regime], test_x[name], n_classes, seed
            )
    bqx[("multitask", "multitask_net")] = stored["multitask_bqx"]
    vol[("multitask", "multitask_net")] = stored["multitask_vol"]
    regime[("multitask", "multitask_net")] = stored["multitask_proba"]
    bqx[("online", "river_ensemble")] = stored["online"]
    return out


def _filled(values: np.ndarray | None, fallback: float) -> np.ndarray:
    if values is None:
        raise ValueError("vol_now was not read")
    return np.where(np.isfinite(values), values, fallback)


def feature_sets(rows: PairRows, bqx_columns: np.ndarray) -> dict[str, np.ndarray | None]:
    """The ablation's inputs: each stage adds a layer to the one before."""
    cross = np.hstack([rows.base, rows.cross])
    return {
        "ridge_bqx": rows.base[:, bqx_columns],
        "base": rows.base,
        "cross_pair": cross,
        "embeddings": None if rows.embeddings is None else np.hstack([cross, rows.embeddings]),
    }


@dataclass(frozen=True)
class Layout:
    """Where things are among the base columns, the regime classes, and the test start."""

    bqx_columns: np.ndarray
    persistence_column: int
    har_columns: tuple[int, ...]
    classes: list[str]
    test_start_epoch: int  # once-trained stages are scored from here on


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
    layout = Layout(
        bqx_columns=np.array([i for i, n in enumerate(base_names) if BQX_WINDOW_FEATURE.match(n)]),
        persistence_column=base_names.index(PERSISTENCE_FEATURE),
        har_columns=har_columns(base_names),
        classes=regime_classes(conn),
        test_start_epoch=int(periods.test.start_utc.timestamp()),
    )
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
                conn,
                columns,
                pair,
                folds[0].test_start,
                folds[-1].test_end,
                with_embeddings,
                layout.classes,
            )
        with threadpool_limits(1):  # small matrices: BLAS threads only contend on a busy machine
            for fold in folds:
                score_fold(collector, pair, fold, sample, test, layout, config)
                if progress:
                    total = len(pairs) * len(folds)
                    progress("evaluating folds × pairs", done * len(folds) + fold.number, total)
    high_vol = layout.classes.index("high_vol") if "high_vol" in layout.classes else None
    rows = summarize(collector, TARGETS, config.bootstrap_resamples, config.seed, high_vol)
    found = {(r.stage, r.model) for r in rows}
    notes = {
        stage: NOT_AVAILABLE[stage] if config.scores(stage) else "left out (--stages)"
        for stage, model in MODELS
        if stage in NOT_AVAILABLE and (stage, model) not in found
    }
    once = [s for s in ONCE_TRAINED_STAGES if any(stage == s for stage, _ in found)]
    if once:
        notes["scored rows"] = (
            f"{' and '.join(once)} trained once on the train period and early-stopped on the "
            f"validation period: scored only from the test start "
            f"({periods.test.start_utc:%Y-%m-%d %H:%M}), and so, on common rows, is every stage"
        )
    if ("multitask", "multitask_net") in found:
        notes["multitask"] = (
            "stored predictions of nets trained once on the train period of bqx.ml_periods "
            "(early-stopped on its validation period), scored from the test start"
        )
    if ("online", "river_ensemble") in found:
        notes["online"] = (
            "stored prequential predictions of `bqx online replay`: every bqx_t60 stage is "
            "scored only on the minutes the replay covered"
        )
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    seconds = time.perf_counter() - started
    log.info("evaluated %d pairs × %d folds in %.1f s", len(pairs), len(folds), seconds)
    return EvaluationResult(run_id, folds, pairs, rows, notes, seconds, config)


def score_fold(
    collector: Collector,
    pair: str,
    fold: Fold,
    sample: PairRows,
    test: HeldOutRows,
    layout: Layout,
    config: EvaluationConfig,
) -> None:
    """Fit every learner on the fold's training rows, predict its test rows, and add them."""
    train_rows = _take(sample, fold.train_mask(sample.ts_epoch))
    rows_in = fold.test_mask(test.rows.ts_epoch)
    if not rows_in.any():
        log.warning("%s has no test rows in fold %d", pair, fold.number)
        return
    test_rows = _take(test.rows, rows_in)
    stored = {
        "multitask_bqx": test.multitask.bqx[rows_in],
        "multitask_vol": test.multitask.vol[rows_in],
        "multitask_proba": test.multitask.proba[rows_in],
        "online": test.online[rows_in],
    }
    predictions = fold_predictions(
        train_rows,
        test_rows,
        layout.bqx_columns,
        layout.persistence_column,
        layout.har_columns,
        len(layout.classes),
        stored,
        config.seed,
    )
    for by_model in predictions.values():
        for key in [k for k in by_model if not config.scores(k[0])]:
            del by_model[key]
    before_test = test_rows.ts_epoch < layout.test_start_epoch
    if before_test.any():
        for by_model in predictions.values():
            for (stage, model), values in list(by_model.items()):
                if stage in ONCE_TRAINED_STAGES:
                    masked = np.array(values, dtype=np.float64, copy=True)
                    masked[before_test] = np.nan
                    by_model[(stage, model)] = masked
    collector.add(
        Block(
            pair=pair,
            fold=fold.number,
            ts_epoch=test_rows.ts_epoch,
            log_return=test.log_return[rows_in],
            cost=spread_return(pair, config.spreads[pair], test.close[rows_in]),
            truth={
                "bqx_t60": test_rows.target,
                "vol_t60": test_rows.vol,
                "regime_t60": test_rows.regime,
            },
            predictions=predictions,
        )
    )


def _take(rows: PairRows, keep: np.ndarray) -> PairRows:
    return PairRows(
        **{
            name: None if getattr(rows, name) is None else getattr(rows, name)[keep]
            for name in PairRows.__dataclass_fields__
        }
    )
