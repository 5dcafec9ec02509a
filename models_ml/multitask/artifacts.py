"""Files of the multi-task nets under `$BQX_HOME/artifacts` and their manifest.

Per pair: `multi_task_nn_{pair}.keras` and `multi_task_nn_{pair}_scalers.pkl` (the input
StandardScaler and the target scaler, both fitted on the pair's train rows). One manifest,
`multitask_manifest.json`, lists the input columns in order, the regime classes, the split,
and per pair the files, the model's sha256, row counts, training time and metrics. Files are
written to a staging folder and moved in with the manifest last. Training some pairs again
keeps the other pairs' entries when the input columns and classes are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import InputColumn
from bqx.periods import Periods
from models_ml.common.manifests import read_manifest
from models_ml.multitask.data import input_names
from models_ml.multitask.net import LOSS_WEIGHTS, TASKS, TargetScaler, best_epochs

if TYPE_CHECKING:
    from models_ml.multitask.scoring import Baselines
    from models_ml.multitask.training import MultitaskConfig, PairResult

MANIFEST_NAME = "multitask_manifest.json"


@dataclass
class PairModel:
    """One pair's trained nets (multi_task, single_task), scalers and baselines."""

    pair: str
    nets: dict[str, Any]
    x_scaler: Any
    target_scaler: TargetScaler
    baselines: Baselines
    histories: dict[str, dict[str, list[float]]]
    seconds: dict[str, float]


@dataclass(frozen=True)
class MultitaskArtifacts:
    directory: Path

    @classmethod
    def of(cls, settings: Settings) -> MultitaskArtifacts:
        return cls(settings.artifacts_dir)

    def model(self, pair: str) -> Path:
        return self.directory / f"multi_task_nn_{pair}.keras"

    def scalers(self, pair: str) -> Path:
        return self.directory / f"multi_task_nn_{pair}_scalers.pkl"

    @property
    def manifest(self) -> Path:
        return self.directory / MANIFEST_NAME


def save_run(
    artifacts: MultitaskArtifacts,
    models: Sequence[PairModel],
    results: Sequence[PairResult],
    config: MultitaskConfig,
    columns: Sequence[InputColumn],
    periods: Periods,
    classes: list[str],
    class_frequencies: dict,
) -> dict:
    """Write the nets, scalers and manifest; returns the manifest."""
    import keras
    import tensorflow as tf

    staging = artifacts.directory / ".staging-multitask"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    features = input_names(list(columns))
    manifest = _previous(artifacts, features, classes)
    by_pair = {r.pair: r for r in results}
    moves = []
    for model in models:
        final_model, final_scalers = artifacts.model(model.pair), artifacts.scalers(model.pair)
        model.nets["multi_task"].save(staging / final_model.name)
        (staging / final_scalers.name).write_bytes(
            pickle.dumps({"x": model.x_scaler, "targets": model.target_scaler})
        )
        moves += [final_model, final_scalers]
        result = by_pair[model.pair]
        manifest["pairs"][model.pair] = {
            "model": final_model.name,
            "scalers": final_scalers.name,
            "model_sha256": hashlib.sha256((staging / final_model.name).read_bytes()).hexdigest(),
            "rows": result.rows,
            "seconds": {k: round(v, 2) for k, v in model.seconds.items()},
            "epochs_run": {k: len(h["val_loss"]) for k, h in model.histories.items()},
            "best_epoch": {k: best_epochs(h) for k, h in model.histories.items()},
            "test": {k: asdict(v) for k, v in result.scores.items()},
            "validation": {k: asdict(v) for k, v in result.validation_scores.items()},
            "majority_rate_test": result.majority_rate,
            "trained_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    manifest |= {
        "model": "multi_task_nn",
        "stage": "2.18",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "features": features,
        "feature_types": [c.data_type for c in columns] + ["real"] * (len(features) - len(columns)),
        "input_width": len(features),
        "tasks": list(TASKS),
        "loss_weights": LOSS_WEIGHTS,
        "regime_classes": classes,
        "regime_units": len(classes),
        "regime_units_note": (
            "one softmax unit per label classify_regime can return (seeds/regime_thresholds."
            "csv); the plan's sketch had 5 units for its 6 labels"
        ),
        "periods": {
            p.name: {"start_utc": p.start_utc.isoformat(), "end_utc": p.end_utc.isoformat()}
            for p in (periods.train, periods.validation, periods.test)
        }
        | {"embargo_minutes": periods.embargo_minutes},
        "config": asdict(config),
        "class_frequencies": class_frequencies,
        "scalers": "input StandardScaler and target mean/scale fitted on each pair's train rows",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=float) + "\n")
    for final in [*moves, artifacts.manifest]:
        os.replace(staging / final.name, final)
    shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _previous(artifacts: MultitaskArtifacts, features: list[str], classes: list[str]) -> dict:
    """The earlier manifest's pair entries when they describe nets on the same inputs."""
    if artifacts.manifest.exists():
        try:
            old = json.loads(artifacts.manifest.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("features") == features and old.get("regime_classes") == classes:
            return {"pairs": dict(old.get("pairs", {}))}
    return {"pairs": {}}


def load_manifest(artifacts: MultitaskArtifacts) -> dict:
    manifest = read_manifest(artifacts.manifest, "multi-task nets", "bqx train multitask")
    if not isinstance(manifest.get("features"), list) or not manifest.get("pairs"):
        raise BqxUserError(f"{artifacts.manifest} lists no features or pairs: retrain")
    return manifest


def load_pair(artifacts: MultitaskArtifacts, pair: str):
    """(model, input scaler, target scaler) of one pair."""
    from models_ml.common.keras import load_keras

    model = load_keras().saving.load_model(artifacts.model(pair))
    scalers = pickle.loads(artifacts.scalers(pair).read_bytes())
    return model, scalers["x"], scalers["targets"]
