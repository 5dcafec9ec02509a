"""Stage 2.17: one autoencoder shared by all pairs, trained on a sample of the train period.

One model for the 28 pairs (not one per pair): a shared embedding puts a minute of EURUSD and
a minute of AUDNZD in the same 64-d space, which the multi-task nets of stage 2.18 need, and
28 × more rows train it.

At least as good as PCA by construction (issue 16: the plain seed-plan network reached a
validation MAE of 0.30 where a 64-component PCA reached 0.19 on the same rows). The network is
a linear PCA path plus learned residuals: embedding = PCA code (Dense 64, initialised to the
train sample's 64 principal axes) + encoder residual (the seed plan's Dense 512 → 256 → 128,
ReLU, batch norm, dropout, then a Dense 64 initialised to zero); reconstruction = PCA decode
(initialised to the axes and the mean) + decoder residual (128 → 256 → 512 → width, last layer
zero). At initialisation it *is* the PCA-64 reconstruction; training (Adam on the MAE, the
metric it is judged on) can only move it where the validation loss improves, and if no epoch
beats the initial validation MAE the initial (PCA) weights are kept. Inputs are made robust on
the train sample first (models_ml.common.preprocessing.RobustScaler: clipped to train
quantiles, 0/1 flags centred, not standardized into z ≈ 10 outliers).

Reads top to bottom: sample the train and validation periods (the test period is never read),
fit one RobustScaler on the train sample, build from the train sample's PCA, fit with early
stopping, evaluate the reconstruction on the validation sample against the mean predictor
(all zeros in scaled units) and PCA-64, save. Training uses a sample because TensorFlow on 2
CPU cores fits ~7,000 rows/s: a year pooled (10 M rows) would take ~25 min per epoch.
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
from models_ml.common.preprocessing import fit_robust_scaler, standardize

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


def tiny_autoencoder_config(pairs: tuple[str, ...]) -> AutoencoderConfig:
    """The smallest budgets that still train a real autoencoder (seconds: 400 rows a pair, at
    most 4,000, 2 epochs), for the live loop's tests and bench/live.py, where it only needs
    to exist (multitask.training.tiny_config is the nets')."""
    return AutoencoderConfig(
        sample_rows=min(400 * len(pairs), 4_000),
        validation_rows=min(100 * len(pairs), 1_000),
        epochs=2,
        batch_size=128,
        pairs=pairs,
    )


@dataclass
class TrainingResult:
    manifest: dict
    artifacts: AutoencoderArtifacts
    loss_plot: Path
    history: dict[str, list[float]] = field(default_factory=dict)


def fit_pca(x_train: np.ndarray) -> PCA:
    """The train sample's principal axes (at most EMBEDDING_DIM; fewer for narrow inputs)."""
    return PCA(n_components=min(EMBEDDING_DIM, *x_train.shape)).fit(x_train)


def _pca_weights(pca: PCA, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(encode kernel, encode bias, decode kernel, decode bias) of the PCA path, padded with
    zero axes to EMBEDDING_DIM: code = (x - mean) @ Vᵀ, reconstruction = code @ V + mean."""
    axes = np.zeros((EMBEDDING_DIM, width), dtype=np.float32)
    axes[: pca.n_components_] = pca.components_
    mean = pca.mean_.astype(np.float32)
    return axes.T, -(mean @ axes.T), axes, mean


def build_autoencoder(width: int, config: AutoencoderConfig, pca: PCA):
    """PCA path + zero-initialised residuals (see the module docstring), compiled with Adam on
    the MAE, MSE as a metric."""
    keras = load_keras()
    layers = keras.layers
    encode_kernel, encode_bias, decode_kernel, decode_bias = _pca_weights(pca, width)
    inputs = keras.Input(shape=(width,), name="features")
    code = layers.Dense(EMBEDDING_DIM, name="pca_encode")(inputs)
    x = inputs
    for i, units in enumerate(ENCODER_UNITS):
        x = layers.Dense(units, activation="relu", name=f"encoder_{units}")(x)
        x = layers.BatchNormalization(name=f"encoder_{units}_bn")(x)
        if i < len(ENCODER_UNITS) - 1:
            x = layers.Dropout(config.dropout, name=f"encoder_{units}_dropout")(x)
    residual = layers.Dense(EMBEDDING_DIM, kernel_initializer="zeros", name="encoder_residual")(x)
    embedding = layers.Add(name="embedding")([code, residual])
    linear = layers.Dense(width, name="pca_decode")(embedding)
    x = embedding
    for units in reversed(ENCODER_UNITS):
        x = layers.Dense(units, activation="relu", name=f"decoder_{units}")(x)
        x = layers.BatchNormalization(name=f"decoder_{units}_bn")(x)
    residual = layers.Dense(width, kernel_initializer="zeros", name="decoder_residual")(x)
    outputs = layers.Add(name="reconstruction")([linear, residual])
    model = keras.Model(inputs, outputs, name="autoencoder")
    model.get_layer("pca_encode").set_weights([encode_kernel, encode_bias])
    model.get_layer("pca_decode").set_weights([decode_kernel, decode_bias])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="mae",
        metrics=["mse"],
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


def linear_baseline(pca: PCA, x_validation: np.ndarray) -> dict[str, float]:
    """Validation MAE / MSE of the 64-component PCA fitted on the train sample: what a linear
    code of the same width reconstructs, and where the network starts."""
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
    scaler = fit_robust_scaler(train.features)  # the train period only
    x_train = standardize(scaler, train.features)
    x_validation = standardize(scaler, validation.features)

    keras = load_keras(config.seed)
    pca = fit_pca(x_train)
    model = build_autoencoder(len(columns), config, pca)
    initial = model.get_weights()
    initial_mae = reconstruction_errors(model, x_validation, config.batch_size)["validation_mae"]
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
    kept_pca = metrics["validation_mae"] > initial_mae
    if kept_pca:  # no epoch beat the PCA start on the validation sample: keep the start
        model.set_weights(initial)
        metrics = reconstruction_errors(model, x_validation, config.batch_size)
    metrics |= linear_baseline(pca, x_validation)
    metrics["residual_kept"] = not kept_pca
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
