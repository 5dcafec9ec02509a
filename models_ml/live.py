"""The live loop's model step (issue 15): after each tail build, the new minutes' autoencoder
embeddings (2.17) and multi-task predictions (2.18), equal to what `bqx embed` and
`bqx predict multitask` write for the same minutes.

`bqx online serve` calls LiveModels.step after every tail build. The step covers every tail
build finished since the last step (bqx.live_tail_builds, tail_id above the watermark in
bqx.live_model_steps) from the oldest of their tail_from on: each table's rows from there are
deleted and written again from the input rows the tail build left (a late bar's tail, an hour
before it, recomputes that hour's embeddings and predictions too; new months' leaves are
created), and the watermark row is written in the same transaction. So a serve killed between
a tail build and its model step redoes that build's minutes at its next step, and a
`bqx build --tail` run by hand is covered by serve's next step. Without watermark (the first
step with trained models) only the newest tail build is covered: history is `bqx embed`'s job.

Equal to batch because both run the same float64 forward pass, a row's output depending on that
row alone (models_ml/common/forward.py), over the same input rows (bqx.feature_reader.read_since
reads the tail with the batch reader's values, once for both stages: the nets take the
embeddings as the step stored them, the float32 values `bqx predict multitask` reads back).

Without a trained autoencoder the step does nothing (LiveModels.skipped says why, in one line
the serve loop prints once); without multi-task nets it writes the embeddings only. A retrain
while serve runs (a manifest's modification time changes) is picked up at the next step.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import psycopg2.extensions

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import read_since
from bqx.pairs import PAIRS
from bqx.sql import apply_ddl
from models_ml.autoencoder.embeddings import EmbedConfig, Encoder, embed, embed_since
from models_ml.autoencoder.manifest import AutoencoderArtifacts
from models_ml.autoencoder.training import tiny_autoencoder_config, train_autoencoder
from models_ml.multitask.artifacts import MultitaskArtifacts
from models_ml.multitask.predictions import (
    LiveNets,
    PredictConfig,
    predict_multitask,
    predict_since,
)
from models_ml.multitask.training import tiny_config, train_multitask

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class StepReport:
    start: datetime  # the first minute recomputed
    through_tail_id: int
    embedded: int
    predicted: int
    seconds: float  # the whole step: the parts, the watermark's insert and the commit
    read_seconds: float = 0.0  # the input rows of the minutes (read_since)
    embed_seconds: float = 0.0  # encoding and writing the embeddings
    predict_seconds: float = 0.0  # the nets and their rows


@dataclass
class LiveModels:
    """The trained encoder and nets as serve keeps them (None: not trained / not usable)."""

    settings: Settings
    encoder: Encoder | None = None
    nets: LiveNets | None = None
    skipped: list[str] = field(default_factory=list)  # why a part does not run, one line each
    _stamp: tuple[float | None, ...] = ()

    @classmethod
    def open(cls, conn: psycopg2.extensions.connection, settings: Settings) -> LiveModels:
        models = cls(settings)
        models._load(conn)
        return models

    def _manifests(self) -> tuple[Path, Path]:
        return (
            AutoencoderArtifacts.of(self.settings).manifest,
            MultitaskArtifacts.of(self.settings).manifest,
        )

    def _stamps(self) -> tuple[float | None, ...]:
        return tuple(p.stat().st_mtime if p.exists() else None for p in self._manifests())

    def _load(self, conn: psycopg2.extensions.connection) -> None:
        self._stamp = self._stamps()
        self.encoder = self.nets = None
        self.skipped = []
        autoencoder, multitask = self._manifests()
        self.encoder = self._load_part(
            conn,
            Encoder.load,
            autoencoder,
            "trained autoencoder",
            "live embeddings and multi-task predictions",
            "bqx train autoencoder",
        )
        if self.encoder is None:
            return
        self.nets = self._load_part(
            conn,
            LiveNets.load,
            multitask,
            "trained multi-task nets",
            "live multi-task predictions",
            "bqx train multitask",
        )
        if self.nets is None:
            return
        if [c.name for c in self.nets.columns] != [c.name for c in self.encoder.columns]:
            self.nets = None  # both read input_columns(conn): a change between the two loads
            self.skipped.append("live multi-task predictions skipped: the inputs changed")

    def _load_part(
        self,
        conn: psycopg2.extensions.connection,
        load: Callable[[psycopg2.extensions.connection, Settings], T],
        manifest: Path,
        what: str,
        part: str,
        train: str,
    ) -> T | None:
        """One trained part (the encoder, the nets), or None with the reason in `skipped`."""
        if not manifest.exists():
            self.skipped.append(
                f"no {what} in {manifest.parent}: {part} are skipped (`{train}` first)"
            )
            return None
        try:
            with conn:
                return load(conn, self.settings)
        except BqxUserError as err:
            self.skipped.append(f"{part} skipped: {err}")
            return None

    def refresh(self, conn: psycopg2.extensions.connection) -> bool:
        """Load the models again when a manifest changed (a retrain); True when it did."""
        if self._stamps() == self._stamp:
            return False
        self._load(conn)
        return True

    def step(self, conn: psycopg2.extensions.connection) -> StepReport | None:
        """Embeddings and predictions of the minutes of the tail builds finished since the
        last step (see the module docstring); None when there were none or nothing is
        trained."""
        if self.encoder is None:
            return None
        began = time.perf_counter()
        with conn:
            with conn.cursor() as cur:
                apply_ddl(cur, "live_models")
                pending = _pending(cur)
            if pending is None:
                return None
            start, through = pending
            read = time.perf_counter()
            blocks = read_since(conn, self.encoder.columns, start, PAIRS)
            encoded = time.perf_counter()
            embeddings = embed_since(conn, self.encoder, start, blocks)
            embedded = sum(len(v) for v in embeddings.values())
            predicted = 0
            nets = time.perf_counter()
            if self.nets is not None:
                predicted = predict_since(conn, self.nets, start, blocks, embeddings)
            done = time.perf_counter()
            # live_model_steps.seconds: the step until its watermark (the row cannot hold the
            # time of its own insert and commit, which StepReport.seconds includes)
            until_watermark = done - began
            with conn.cursor() as cur:
                cur.execute(
                    "insert into bqx.live_model_steps (through_tail_id, step_from,"
                    " embedded_rows, predicted_rows, seconds) values (%s, %s, %s, %s, %s)",
                    (through, start, embedded, predicted, until_watermark),
                )
        log.info(
            "live models from %s: %d embeddings, %d predictions in %.2f s",
            start,
            embedded,
            predicted,
            until_watermark,
        )
        return StepReport(
            start,
            through,
            embedded,
            predicted,
            time.perf_counter() - began,  # with the watermark and the commit
            encoded - read,
            nets - encoded,
            done - nets,
        )


def train_tiny_models(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    pairs: tuple[str, ...],
    predict_history: bool = True,
) -> tuple[float, ...]:
    """A tiny shared autoencoder and tiny per-pair multi-task nets (real TensorFlow, the
    smallest budgets that make real models: tiny_autoencoder_config, tiny_config) trained on
    the built database of `settings`, every input row embedded as `bqx embed` does and, with
    `predict_history`, predicted as `bqx predict multitask` does. For the live loop's tests
    and bench/live.py, where the models only need to exist; the artifacts go to
    settings.home, so a live database sharing the home serves the same models. Returns the
    seconds of each part done (autoencoder, embeddings, nets[, predictions])."""
    marks = [time.perf_counter()]
    train_autoencoder(conn, settings, tiny_autoencoder_config(pairs))
    marks.append(time.perf_counter())
    embed(conn, settings, EmbedConfig(pairs=pairs))
    marks.append(time.perf_counter())
    train_multitask(conn, settings, tiny_config(pairs))
    marks.append(time.perf_counter())
    if predict_history:
        predict_multitask(conn, settings, PredictConfig())
        marks.append(time.perf_counter())
    return tuple(b - a for a, b in zip(marks, marks[1:], strict=False))


def freeze_loaded_objects() -> int:
    """Exempt every object alive now (TensorFlow, the nets, dbt's parsed project) from the
    garbage collector's full passes; returns how many. Call once serve has loaded them.

    Why: with TensorFlow loaded a process holds ~540,000 objects, and a generation-2 collection
    traverses them all: 0.29-0.35 s, every ~7 live minutes of 28 pairs (triggered by the
    rows the step allocates), which set the model step's p99 (measured: its input read 0.11 s,
    0.43 s with the collection). After gc.freeze() those passes take 7-8 ms."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _pending(cur: psycopg2.extensions.cursor) -> tuple[datetime, int] | None:
    """(oldest tail_from, newest tail_id) of the finished tail builds after the watermark (the
    newest finished one alone when there is no watermark yet); None when there are none."""
    cur.execute("select to_regclass('bqx.live_tail_builds') is not null")
    if not cur.fetchone()[0]:
        return None
    cur.execute("select max(through_tail_id) from bqx.live_model_steps")
    watermark = cur.fetchone()[0]
    if watermark is None:
        cur.execute(
            "select tail_from, tail_id from bqx.live_tail_builds where finished_at is not null"
            " order by tail_id desc limit 1"
        )
    else:
        cur.execute(
            "select min(tail_from), max(tail_id) from bqx.live_tail_builds"
            " where finished_at is not null and tail_id > %s",
            (watermark,),
        )
    row = cur.fetchone()
    return None if row is None or row[0] is None else (row[0], int(row[1]))
