"""Stage 2.18: one multi-task net per pair, with a single-task twin and baselines (ablation).

Reads top to bottom. For each pair: sample the train and validation periods (time-ordered
samples from bqx.ml_periods, whose embargo is the longest window + the 60-minute horizon),
fit the input scaler and the target scaler on the train rows, fit the multi-task net (early
stopping on the weighted total validation loss, patience 10, best weights restored; learning
rate halved after 5 flat epochs; the best epoch of each head's own validation loss is
recorded: until this change only the bqx MAE was watched, and the weights restored were often
from before the vol head had learnt anything),
fit the single-task net the same way, fit the baselines on the train rows, save the net.
Only when every pair is trained is the test period read — once — to score every model.
A per-pair sample budget keeps CPU time bounded (TensorFlow fits ~7,000 rows/s here).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import psycopg2.extensions

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import ProgressCallback, input_columns
from bqx.pairs import PAIRS, validate_pair
from bqx.periods import load_periods
from models_ml.common.keras import load_keras
from models_ml.common.preprocessing import fit_scaler, standardize
from models_ml.multitask.artifacts import MultitaskArtifacts, PairModel, save_run
from models_ml.multitask.data import (
    PERSISTENCE_FEATURE,
    PairRows,
    input_names,
    regime_classes,
    require_inputs,
    sample_rows,
    target_class_frequencies,
)
from models_ml.multitask.net import TASKS, NetConfig, TargetScaler, build_net, net_targets, predict
from models_ml.multitask.scoring import Baselines, ModelScores, har_columns, score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultitaskConfig:
    """What to train. Budgets are rows per pair; the defaults suit a few weeks of data."""

    pairs: tuple[str, ...] = PAIRS
    skip_missing: bool = True  # pairs without train rows are skipped (else an error)
    sample_rows: int = 20_000
    validation_rows: int = 5_000
    test_rows: int = 10_000
    epochs: int = 50
    batch_size: int = 256
    patience: int = 10
    lr_patience: int = 5
    learning_rate: float = 1e-3
    dropout: float = 0.3
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("sample_rows", "validation_rows", "test_rows", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise BqxUserError(f"{name.replace('_', '-')} must be at least 1")
        if not self.pairs:
            raise BqxUserError("no pairs to train")
        object.__setattr__(self, "pairs", tuple(validate_pair(p) for p in self.pairs))


def tiny_config(pairs: tuple[str, ...]) -> MultitaskConfig:
    """The smallest budgets that still train real nets (seconds a pair: 600 rows, 2 epochs),
    for the live loop's tests and bench/live.py, where the nets only need to exist."""
    return MultitaskConfig(
        pairs=pairs,
        skip_missing=False,
        sample_rows=600,
        validation_rows=200,
        test_rows=200,
        epochs=2,
        batch_size=128,
    )


@dataclass
class PairResult:
    pair: str
    scores: dict[str, ModelScores]  # model name → test scores
    validation_scores: dict[str, ModelScores]
    majority_rate: float
    histories: dict[str, dict[str, list[float]]]  # "multi_task" / "single_task" → history
    seconds: dict[str, float]
    rows: dict[str, int]


@dataclass
class MultitaskResult:
    pairs: list[PairResult]
    skipped: dict[str, str]
    classes: list[str]
    class_frequencies: dict[str, dict[str, float | int]]
    artifacts: MultitaskArtifacts
    manifest: dict = field(default_factory=dict)


def fit_net(keras, model, x, y, x_val, y_val, config: MultitaskConfig) -> dict[str, list[float]]:
    """Fit with early stopping on the weighted total validation loss (best weights kept).
    History keys are per task (`bqx_mae`, `val_regime_loss`, …) for one head as for three;
    `val_loss` is the total."""
    single = len(model.outputs) == 1  # Keras names a lone output's metrics without prefix
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", mode="min", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", mode="min", factor=0.5, patience=config.lr_patience
        ),
    ]
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    ).history
    out = {_task_key(k, single): [float(v) for v in values] for k, values in history.items()}
    if single:
        out["val_loss"] = out["val_bqx_loss"]
    return out


def _task_key(key: str, single: bool) -> str:
    if not single or key == "learning_rate":
        return key
    prefix = "val_" if key.startswith("val_") else ""
    return f"{prefix}bqx_{key.removeprefix('val_')}"


def train_pair(
    keras, pair: str, train: PairRows, validation: PairRows, classes: list[str], config, names
):
    """Fit scalers, both nets and the baselines on one pair's train rows."""
    x_scaler = fit_scaler(train.x)
    x_train, x_val = standardize(x_scaler, train.x), standardize(x_scaler, validation.x)
    t_scaler = TargetScaler.fit(train.targets.bqx, train.targets.vol)
    net_config = NetConfig(learning_rate=config.learning_rate, dropout=config.dropout)
    nets, histories, seconds = {}, {}, {}
    for name, tasks in (("multi_task", TASKS), ("single_task", ("bqx",))):
        keras.utils.set_random_seed(config.seed)
        model = build_net(x_train.shape[1], len(classes), tasks, net_config)
        started = time.perf_counter()
        histories[name] = fit_net(
            keras,
            model,
            x_train,
            net_targets(train.targets, t_scaler, tasks),
            x_val,
            net_targets(validation.targets, t_scaler, tasks),
            config,
        )
        seconds[name] = time.perf_counter() - started
        nets[name] = model
        if "vol" in tasks:
            # a direct call, not predict(): one predict function per pair retraces tf.function
            net_vol = np.asarray(model(x_train, training=False)["vol"])
            t_scaler = t_scaler.with_smearing(train.targets.vol, net_vol)
    high_vol = classes.index("high_vol") if "high_vol" in classes else None
    baselines = Baselines(
        names.index(PERSISTENCE_FEATURE), har_columns(names), len(classes), high_vol
    ).fit(x_train, train)
    log.info("%s trained in %s", pair, {k: round(v, 1) for k, v in seconds.items()})
    return PairModel(pair, nets, x_scaler, t_scaler, baselines, histories, seconds)


def evaluate(model: PairModel, rows: PairRows) -> tuple[dict[str, ModelScores], float]:
    """Scores of every model and baseline on `rows`, and the majority-class rate."""
    x = standardize(model.x_scaler, rows.x)
    out: dict[str, ModelScores] = {}
    for name, net in model.nets.items():
        p = predict(net, x, model.target_scaler)
        out[name] = score(
            rows.targets, p.bqx, p.vol, p.regime, p.regime_proba, model.baselines.high_vol_code
        )
    out |= model.baselines.scores(x, rows)
    return out, model.baselines.majority_rate(rows.targets)


def train_multitask(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: MultitaskConfig,
    progress: ProgressCallback | None = None,
) -> MultitaskResult:
    """Train every pair, then score on the test period once; save nets, manifest, report."""
    from models_ml.multitask.report import write_report

    periods = load_periods(conn)
    require_inputs(conn)
    columns = input_columns(conn)
    names = input_names(columns)
    har_columns(names)  # a clear error before any training when a HAR input is missing
    if PERSISTENCE_FEATURE not in names:
        raise BqxUserError(f"the feature matrix has no {PERSISTENCE_FEATURE} column: rebuild it")
    classes = regime_classes(conn)
    keras = load_keras(config.seed)

    trained: dict[str, tuple[PairModel, dict, dict]] = {}
    skipped: dict[str, str] = {}
    for done, pair in enumerate(config.pairs, start=1):
        try:
            train = sample_rows(conn, columns, periods.train, pair, config.sample_rows, config.seed)
            validation = sample_rows(
                conn, columns, periods.validation, pair, config.validation_rows, config.seed
            )
        except BqxUserError as err:
            if not config.skip_missing:
                raise BqxUserError(f"{pair}: {err}") from None
            skipped[pair] = str(err)
            log.warning("skipping %s: %s", pair, err)
            continue
        model = train_pair(keras, pair, train, validation, classes, config, names)
        val_scores, _ = evaluate(model, validation)
        trained[pair] = (model, val_scores, {"train": len(train), "validation": len(validation)})
        if progress:
            progress("training pairs", done, len(config.pairs))
    if not trained:
        raise BqxUserError(
            "no pair has input rows in both the train and validation periods: "
            "run `bqx build` and `bqx embed` first, or use more data"
        )

    results = []
    for done, (pair, (model, val_scores, rows)) in enumerate(trained.items(), start=1):
        test = sample_rows(conn, columns, periods.test, pair, config.test_rows, config.seed)
        test_scores, majority = evaluate(model, test)
        results.append(
            PairResult(
                pair,
                test_scores,
                val_scores,
                majority,
                model.histories,
                model.seconds,
                rows | {"test": len(test)},
            )
        )
        if progress:
            progress("testing pairs", done, len(trained))

    frequencies = target_class_frequencies(conn, classes, list(trained))
    artifacts = MultitaskArtifacts.of(settings)
    result = MultitaskResult(results, skipped, classes, frequencies, artifacts)
    result.manifest = save_run(
        artifacts,
        [m for m, _, _ in trained.values()],
        results,
        config,
        columns,
        periods,
        classes,
        frequencies,
    )
    write_report(result, settings.reports_dir)
    log.info("multi-task nets trained for %d pairs, %d skipped", len(results), len(skipped))
    return result


def mean_of(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else float("nan")
