"""`bqx predict multitask`: every input row of the trained pairs → bqx.multitask_predictions.

Partitioned like the feature tables and bqx.autoencoder_embeddings: LIST(pair) →
`multitask_predictions_<pair>` by RANGE(ts_utc) → monthly leaves. Columns: pair, ts_utc,
bqx_t60_pred, vol_t60_pred (real, target units), regime_t60_code_pred (integer, argmax) and
one probability per regime class `p_<label>` (real). Each (pair, month) is one transaction:
truncate the leaf, COPY the new rows (binary; models_ml/common/partitioned_store.py), so a re-run
gives the same rows. The input
columns are compared with the manifest's list before any work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import psycopg2.extensions

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import (
    ProgressCallback,
    input_columns,
    month_starts,
    next_month,
)
from bqx.pairs import validate_pair
from bqx.periods import load_periods
from models_ml.common.partitioned_store import PartitionedTable, ValueColumn
from models_ml.common.preprocessing import standardize
from models_ml.multitask.artifacts import MultitaskArtifacts, load_manifest, load_pair
from models_ml.multitask.data import input_names, read_rows, require_inputs
from models_ml.multitask.net import predict

log = logging.getLogger(__name__)

TABLE = "multitask_predictions"


@dataclass(frozen=True)
class PredictConfig:
    pairs: tuple[str, ...] | None = None  # None: every pair in the manifest

    def __post_init__(self) -> None:
        if self.pairs is not None:
            object.__setattr__(self, "pairs", tuple(validate_pair(p) for p in self.pairs))


@dataclass(frozen=True)
class PredictResult:
    partitions: int
    rows: int
    seconds: float
    pairs: list[str]


def predictions_table(classes: list[str]) -> PartitionedTable:
    """bqx.multitask_predictions for these regime classes (one probability column each)."""
    columns = [ValueColumn("bqx_t60_pred"), ValueColumn("vol_t60_pred")]
    columns.append(ValueColumn("regime_t60_code_pred", "integer"))
    columns += [ValueColumn(f"p_{label}") for label in classes]
    return PartitionedTable(TABLE, tuple(columns), "bqx predict multitask")


def predict_multitask(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: PredictConfig,
    progress: ProgressCallback | None = None,
) -> PredictResult:
    artifacts = MultitaskArtifacts.of(settings)
    manifest = load_manifest(artifacts)
    require_inputs(conn)
    columns = input_columns(conn)
    if input_names(columns) != manifest["features"]:
        raise BqxUserError(
            "the input columns differ from the ones the multi-task nets were trained on: "
            "retrain with `bqx train multitask`"
        )
    trained = list(manifest["pairs"])
    pairs = list(config.pairs) if config.pairs else trained
    untrained = [p for p in pairs if p not in trained]
    if untrained:
        raise BqxUserError(f"no multi-task net for {', '.join(untrained)}: train it first")
    classes = list(manifest["regime_classes"])
    periods = load_periods(conn)
    months = month_starts(periods.train.start_utc, periods.test.end_utc)
    started = time.perf_counter()
    table = predictions_table(classes)
    with conn:
        table.ensure_parent(conn)
    partitions = rows = 0
    todo = [(pair, month) for pair in pairs for month in months]
    loaded: dict[str, tuple] = {}
    for done, (pair, month) in enumerate(todo, start=1):
        if pair not in loaded:
            loaded = {pair: load_pair(artifacts, pair)}  # one pair's net in memory at a time
        model, x_scaler, t_scaler = loaded[pair]
        with conn:
            block = read_rows(conn, columns, pair, month, next_month(month))
            if len(block):
                p = predict(model, standardize(x_scaler, block.x), t_scaler)
                values = [p.bqx, p.vol, p.regime, *np.asarray(p.regime_proba).T]
                table.replace_leaf(conn, pair, month, block.ts_epoch, values)
                partitions += 1
                rows += len(block)
        if progress:
            progress("predicting", done, len(todo))
    seconds = time.perf_counter() - started
    log.info("wrote %d prediction rows in %d partitions in %.1f s", rows, partitions, seconds)
    return PredictResult(partitions, rows, seconds, pairs)
