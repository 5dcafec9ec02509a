"""Stage 2.17: one autoencoder shared by all pairs, trained on a sample of the train period.

One model for the 28 pairs (not one per pair): a shared embedding puts a minute of EURUSD and
a minute of AUDNZD in the same 64-d space, which the multi-task nets of stage 2.18 need, and
28 × more rows train it. The network follows the seed plan: Dense 512 → 256 → 128 (ReLU,
batch norm, dropout 0.2 after the first two) → linear Dense 64 named `embedding` → mirrored
decoder 128 → 256 → 512 → linear output of the input width; Adam on the MSE.

Reads top to bottom: sample the train and validation periods (the test period is never read),
fit one StandardScaler on the train sample, build, fit with early stopping, evaluate the
reconstruction on the validation sample against the mean predictor (all zeros in standardized
units), save. Training uses a sample because TensorFlow on 2 CPU cores fits ~7,000 rows/s:
a year pooled (10 M rows) would take ~25 min per epoch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg2.extensions
from sklearn.decomposition import PCA

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import ProgressCallback, input_columns, sample_input
from bqx.pairs import PAIRS, validate_pair
from bqx.periods import load_periods
from models_ml.autoencoder.artifacts import (
    build_manifest,
    fresh_staging,
    plot_loss,
    save_artifacts,
)
from models_ml.autoencoder.manifest import EMBEDDING_DIM, AutoencoderArtifacts
from models_ml.common.keras import load_keras
from models_ml.common.preprocessing import fit_scaler, standardize

log = logging.getLogger(__name__)

ENCODER_UNITS = (512, 256, 128)


@dataclass(frozen=True)
class AutoencoderConfig:
    """What to train. The defaults train on the demo data (21 days) in about two minutes."""

    sample_rows: int = 50_000  # train-period rows, an equal share per pair
    validation_rows: int = 12_500  # validation-period rows, an equal share per pair
    epochs: int = 20
    # 256 / 2e-3 reached a validation MAE of 0.299 on the demo data where 512 / 1e-3 reached
    # 0.337 in the same 20 epochs and about the same time (rows/s barely depend on it here)
    batch_size: int = 256
    patience: int = 5
    learning_rate: float = 2e-3
    dropout: float = 0.2
    seed: int = 7
    pairs: tuple[str, ...] = PAIRS

    def __post_init__(self) -> None:
        for name in ("sample_rows", "validation_rows", "epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise BqxUserError(f"{name.replace('_', '-')} must be at least 1")
        if not 0 < self.learning_rate < 1:
            raise BqxUserError("the learning rate must lie between 0 and 1")
        object.__setattr__(self, "pairs", tuple(validate_pair(p) for p in self.pairs))


@dataclass
class TrainingResult:
    manifest: dict
    artifacts: AutoencoderArtifacts
    loss_plot: Path
    history: dict[str, list[float]] = field(default_factory=dict)


def build_autoencoder(width: int, config: AutoencoderConfig):
    """The seed plan's network, compiled with Adam, MSE loss and an MAE metric."""
    keras = load_keras()
    layers = keras.layers
    inputs = keras.Input(shape=(width,), name="features")
    x = inputs
    for i, units in enumerate(ENCODER_UNITS):
        x = layers.Dense(units, activation="relu", name=f"encoder_{units}")(x)
        x = layers.BatchNormalization(name=f"encoder_{units}_bn")(x)
        if i < len(ENCODER_UNITS) - 1:
            x = layers.Dropout(config.dropout, name=f"encoder_{units}_dropout")(x)
    x = layers.Dense(EMBEDDING_DIM, name="embedding")(x)
    for units in reversed(ENCODER_UNITS):
        x = layers.Dense(units, activation="relu", name=f"decoder_{units}")(x)
        x = layers.BatchNormalization(name=f"decoder_{units}_bn")(x)
    outputs = layers.Dense(width, name="reconstruction")(x)
    model = keras.Model(inputs, outputs, name="autoencoder")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="mse",
        metrics=["mae"],
    )
    return model


def embedding_extractor(model):
    """The encoder half: input → the `embedding` layer (64 values per row)."""
    keras = load_keras()
    return keras.Model(model.inputs, model.get_layer("embedding").output, name="embedding")


def reconstruction_errors(model, scaled: np.ndarray, batch_size: int) -> dict[str, float]:
    """MAE / MSE of the reconstruction and of the mean predictor (zeros), standardized."""
    reconstructed = model.predict(scaled, batch_size=batch_size, verbose=0)
    error = reconstructed - scaled
    return {
        "validation_mae": float(np.mean(np.abs(error))),
        "validation_mse": float(np.mean(error**2)),
        "mean_predictor_mae": float(np.mean(np.abs(scaled))),
        "mean_predictor_mse": float(np.mean(scaled**2)),
    }


def linear_baseline(x_train: np.ndarray, x_validation: np.ndarray) -> dict[str, float]:
    """Validation MAE / MSE of a 64-component PCA fitted on the train sample: what a linear
    code of the same width reconstructs. An autoencoder worse than this has not yet learnt
    more than a rotation could."""
    pca = PCA(n_components=min(EMBEDDING_DIM, *x_train.shape)).fit(x_train)
    error = pca.inverse_transform(pca.transform(x_validation)) - x_validation
    return {"pca_64_mae": float(np.mean(np.abs(error))), "pca_64_mse": float(np.mean(error**2))}


def train_autoencoder(
    conn: psycopg2.extensions.connection,
    settings: Settings,
    config: AutoencoderConfig,
    progress: ProgressCallback | None = None,
) -> TrainingResult:
    """Sample, scale, fit, evaluate and save; returns the manifest written beside the model."""
    periods = load_periods(conn)
    columns = input_columns(conn)
    train = sample_input(
        conn, columns, periods.train, config.sample_rows, config.seed, config.pairs, progress
    )
    validation = sample_input(
        conn,
        columns,
        periods.validation,
        config.validation_rows,
        config.seed,
        config.pairs,
        progress,
    )
    scaler = fit_scaler(train.features)  # the train period only
    x_train = standardize(scaler, train.features)
    x_validation = standardize(scaler, validation.features)

    keras = load_keras(config.seed)
    model = build_autoencoder(len(columns), config)
    artifacts = AutoencoderArtifacts.of(settings)
    staging = fresh_staging(artifacts)
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(
            staging / artifacts.checkpoint.name, monitor="val_loss", save_best_only=True
        ),
    ]
    if progress:
        callbacks.append(_epoch_progress(keras, progress, config.epochs))
    started = time.perf_counter()
    history = model.fit(
        x_train,
        x_train,
        validation_data=(x_validation, x_validation),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    ).history
    seconds = time.perf_counter() - started
    epochs_run = len(history["loss"])
    metrics = reconstruction_errors(model, x_validation, config.batch_size)
    metrics |= linear_baseline(x_train, x_validation)
    log.info("trained %d epochs in %.1f s: %s", epochs_run, seconds, metrics)

    manifest = build_manifest(
        config, columns, periods, train, validation, history, metrics, seconds
    )
    save_artifacts(
        model, embedding_extractor(model), scaler, train, validation, manifest, artifacts, staging
    )
    loss_plot = settings.reports_dir / "autoencoder_loss.png"
    plot_loss(history, metrics, loss_plot)
    return TrainingResult(manifest, artifacts, loss_plot, history)


def _epoch_progress(keras, progress: ProgressCallback, epochs: int):
    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            progress("training", epoch + 1, epochs)

    return EpochProgress()
