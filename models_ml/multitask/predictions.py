"""`bqx predict multitask`: every input row of the trained pairs → bqx.multitask_predictions.

Partitioned like the feature tables and bqx.autoencoder_embeddings: LIST(pair) →
`multitask_predictions_<pair>` by RANGE(ts_utc) → monthly leaves. Columns: pair, ts_utc,
bqx_t60_pred, vol_t60_pred (real, target units), regime_t60_code_pred (integer, argmax) and
one probability per regime class `p_<label>` (real). Each (pair, month) is one transaction:
truncate the leaf, COPY the new rows (binary; models_ml/common/partitioned_store.py), so a re-run
gives the same rows. The input
columns are compared with the manifest's list before any work.

The nets run as float64 numpy forward passes of the saved models (models_ml/common/forward.py),
not TensorFlow's predict, so a row's prediction depends on that row alone: `bqx online serve`
predicts each new minute (predict_since) bitwise as this batch run does in month blocks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg2.extensions

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import (
    InputBlock,
    InputColumn,
    ProgressCallback,
    input_columns,
    month_starts,
    next_month,
)
from bqx.pairs import validate_pair
from bqx.periods import load_periods
from models_ml.common.forward import ForwardPass
from models_ml.common.partitioned_store import PartitionedTable, ValueColumn
from models_ml.common.preprocessing import standardize
from models_ml.multitask.artifacts import MultitaskArtifacts, load_manifest, load_pair
from models_ml.multitask.data import input_names, read_rows, require_inputs
from models_ml.multitask.net import TargetScaler, predict

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


@dataclass(frozen=True)
class PairNet:
    """One pair's net as a float64 forward pass, with its input and target scalers."""

    forward: ForwardPass
    x_scaler: Any
    t_scaler: TargetScaler

    @classmethod
    def load(cls, artifacts: MultitaskArtifacts, pair: str) -> PairNet:
        model, x_scaler, t_scaler = load_pair(artifacts, pair)
        return cls(ForwardPass.of(model), x_scaler, t_scaler)

    def columns(self, x: np.ndarray) -> list[np.ndarray]:
        """The table's value columns for input rows x (features + embeddings), in order."""
        p = predict(self.forward, standardize(self.x_scaler, x), self.t_scaler)
        return [p.bqx, p.vol, p.regime, *np.asarray(p.regime_proba).T]


@dataclass(frozen=True)
class LiveNets:
    """What `bqx online serve` keeps loaded: every trained pair's net, the input columns
    (checked against the manifest) and the table of the regime classes."""

    columns: list[InputColumn]
    nets: dict[str, PairNet]
    table: PartitionedTable

    @classmethod
    def load(cls, conn: psycopg2.extensions.connection, settings: Settings) -> LiveNets:
        artifacts = MultitaskArtifacts.of(settings)
        manifest = load_manifest(artifacts)
        columns = input_columns(conn)
        if input_names(columns) != manifest["features"]:
            raise BqxUserError(
                "the input columns differ from the ones the multi-task nets were trained on: "
                "retrain with `bqx train multitask`"
            )
        nets = {pair: PairNet.load(artifacts, pair) for pair in manifest["pairs"]}
        return cls(columns, nets, predictions_table(list(manifest["regime_classes"])))


def predict_since(
    conn: psycopg2.extensions.connection,
    live: LiveNets,
    start: datetime,
    blocks: dict[str, InputBlock],
    embeddings: dict[str, np.ndarray],
) -> int:
    """The live tail: every pair's predictions from `start` on replaced by its net's output for
    the input rows there now (`blocks`, read_since) with their embeddings as just stored (the
    values `bqx predict multitask` reads back from bqx.autoencoder_embeddings; caller's
    transaction). Returns the rows written."""
    rows = {}
    for pair, net in live.nets.items():
        if pair in blocks:
            x = np.hstack([blocks[pair].features, embeddings[pair]]).astype(np.float32)
            rows[pair] = (blocks[pair].ts_epoch, net.columns(x))
    return live.table.replace_from(conn, start, rows)


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
    loaded: dict[str, PairNet] = {}
    for done, (pair, month) in enumerate(todo, start=1):
        if pair not in loaded:
            loaded = {pair: PairNet.load(artifacts, pair)}  # one pair's net at a time
        with conn:
            block = read_rows(conn, columns, pair, month, next_month(month))
            if len(block):
                values = loaded[pair].columns(block.x)
                table.replace_leaf(conn, pair, month, block.ts_epoch, values)
                partitions += 1
                rows += len(block)
        if progress:
            progress("predicting", done, len(todo))
    seconds = time.perf_counter() - started
    log.info("wrote %d prediction rows in %d partitions in %.1f s", rows, partitions, seconds)
    return PredictResult(partitions, rows, seconds, pairs)
