"""The autoencoder's artifacts: manifest, model files, scaler, training rows, loss curves.

Kept apart from the training code so that `autoencoder.py` reads top to bottom. Every file is
written into a staging folder first and moved into `$BQX_HOME/artifacts` with the manifest
last, so an interrupted run never leaves a manifest that describes another model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import platform
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sklearn
from sklearn.preprocessing import StandardScaler

from bqx.feature_reader import InputColumn, InputSample
from bqx.periods import Periods
from models_ml.autoencoder.manifest import (
    EMBEDDING_DIM,
    RECONSTRUCTION_MAE_TARGET,
    AutoencoderArtifacts,
)

if TYPE_CHECKING:
    from models_ml.autoencoder.training import AutoencoderConfig


def build_manifest(
    config: AutoencoderConfig,
    columns: Sequence[InputColumn],
    periods: Periods,
    train: InputSample,
    validation: InputSample,
    history: dict,
    metrics: dict[str, float],
    seconds: float,
) -> dict:
    """Everything a later stage (or a reader) needs to know about the trained model."""
    import keras
    import tensorflow as tf

    epochs_run = len(history["loss"])
    # 0: no epoch beat the PCA start on the validation sample, which was kept (training.py)
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if metrics.get("residual_kept") else 0
    return {
        "model": "autoencoder",
        "stage": "2.17",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "features": [c.name for c in columns],
        "feature_types": [c.data_type for c in columns],
        "feature_views": {
            view: [c.name for c in columns if c.view == view]
            for view in dict.fromkeys(c.view for c in columns)
        },
        "input_width": len(columns),
        "embedding_dim": EMBEDDING_DIM,
        "data_range": {
            "start_utc": periods.train.start_utc.isoformat(),
            "end_utc": periods.test.end_utc.isoformat(),
        },
        "periods": {
            p.name: {"start_utc": p.start_utc.isoformat(), "end_utc": p.end_utc.isoformat()}
            for p in (periods.train, periods.validation, periods.test)
        }
        | {"embargo_minutes": periods.embargo_minutes},
        "seed": config.seed,
        "config": asdict(config),
        "samples": {"train": _describe(train), "validation": _describe(validation)},
        "scaler": {
            "fitted_on": "train",
            "rows": len(train),
            "kind": "robust (clipped 0.5%-99.5%, flags centred)",
        },
        "training": {
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "stopped_early": epochs_run < config.epochs,
            "seconds": round(seconds, 2),
            "rows_per_second": round(len(train) * epochs_run / seconds, 1),
            "history": {k: [float(v) for v in values] for k, values in history.items()},
        },
        "metrics": metrics,
        "targets": {
            "reconstruction_mae": {
                "target": f"< {RECONSTRUCTION_MAE_TARGET}",
                "value": metrics["validation_mae"],
                "passed": metrics["validation_mae"] < RECONSTRUCTION_MAE_TARGET,
            },
            "at_least_pca_64": {
                "target": "validation MAE <= PCA-64's on the same sample",
                "value": metrics["validation_mae"],
                "passed": metrics["validation_mae"] <= metrics["pca_64_mae"] * (1 + 1e-6),
            },
            "beats_mean_predictor": {
                "target": "validation MAE < mean predictor MAE",
                "value": metrics["validation_mae"],
                "passed": metrics["validation_mae"] < metrics["mean_predictor_mae"],
            },
        },
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "scikit_learn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }


def _describe(sample: InputSample) -> dict:
    return {
        "rows": len(sample),
        "rows_per_pair": sample.rows_per_pair,
        "first_ts_utc": datetime.fromtimestamp(int(sample.ts_epoch.min()), UTC).isoformat(),
        "last_ts_utc": datetime.fromtimestamp(int(sample.ts_epoch.max()), UTC).isoformat(),
    }


def fresh_staging(artifacts: AutoencoderArtifacts) -> Path:
    """An empty folder beside the artifacts; training writes its checkpoint there."""
    staging = artifacts.directory / ".staging-autoencoder"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def save_artifacts(
    model,
    extractor,
    scaler: StandardScaler,
    train: InputSample,
    validation: InputSample,
    manifest: dict,
    artifacts: AutoencoderArtifacts,
    staging: Path,
) -> None:
    """Write every artifact into a staging folder, then move them in with the manifest last:
    an interrupted run never leaves a manifest describing another model."""
    width = manifest["input_width"]
    files = {
        artifacts.model: lambda p: model.save(p),
        artifacts.h5_export(width): lambda p: _save_h5(model, p),
        artifacts.extractor: lambda p: extractor.save(p),
        artifacts.scaler: lambda p: p.write_bytes(pickle.dumps(scaler)),
        artifacts.training_rows: lambda p: _save_rows(p, train, validation),
    }
    for final, write in files.items():
        write(staging / final.name)
    manifest["artifacts"] = {
        "model": artifacts.model.name,
        "h5_export": artifacts.h5_export(width).name,
        "embedding_extractor": artifacts.extractor.name,
        "scaler": artifacts.scaler.name,
        "training_rows": artifacts.training_rows.name,
        "checkpoint": artifacts.checkpoint.name,
        "model_sha256": hashlib.sha256((staging / artifacts.model.name).read_bytes()).hexdigest(),
    }
    (staging / artifacts.manifest.name).write_text(json.dumps(manifest, indent=2) + "\n")
    for final in [*files, artifacts.checkpoint, artifacts.manifest]:
        if (staging / final.name).exists():
            os.replace(staging / final.name, final)
    shutil.rmtree(staging, ignore_errors=True)


def _save_h5(model, path: Path) -> None:
    """Legacy HDF5 export (Keras 3 reloads it only with compile=False). Keras warns through
    absl's logger that the format is legacy; we know, and the CLI's output stays clean."""
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)
    try:
        model.save(path)
    finally:
        absl_log.setLevel(level)


def _save_rows(path: Path, train: InputSample, validation: InputSample) -> None:
    """The (pair, minute) keys the model saw: proof of which period fed it, and a replay aid."""
    with path.open("wb") as out:
        np.savez_compressed(
            out,
            train_pair=train.pairs.astype("U6"),
            train_ts_epoch=train.ts_epoch,
            validation_pair=validation.pairs.astype("U6"),
            validation_ts_epoch=validation.ts_epoch,
        )


def plot_loss(history: dict, metrics: dict[str, float], path: Path) -> None:
    """MSE and MAE (the loss) per epoch, with the mean predictor, PCA-64 and the plan's target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    panels = ((left, "mse", "MSE"), (right, "loss", "MAE"))
    for axis, key, name in panels:
        unit = name.lower()
        axis.plot(epochs, history[key], marker="o", label="train (sample)")
        axis.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        axis.axhline(
            metrics[f"mean_predictor_{unit}"], color="grey", linestyle="--", label="mean predictor"
        )
        axis.axhline(
            metrics[f"pca_64_{unit}"], color="purple", linestyle="-.", label="PCA, 64 components"
        )
        if name == "MAE":
            axis.axhline(RECONSTRUCTION_MAE_TARGET, color="green", linestyle=":", label="target")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.set_title(f"reconstruction {name} (robust-scaled)")
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
