"""The plan's per-pair network of stage 2.18, and its single-task twin for the ablation.

Shared trunk: Dense 256 (ReLU) → batch norm → dropout 0.3 → Dense 128 (ReLU) → batch norm →
dropout 0.3. Heads: `bqx` Dense 64 (ReLU) → 1 linear; `vol` Dense 32 (ReLU) → 1 linear;
`regime` Dense 32 (ReLU) → softmax with one unit per label classify_regime can return (six
with the default seed, where the plan's sketch had five units for six labels). Losses MSE / MSE /
sparse categorical cross-entropy (categorical cross-entropy on integer labels), weights
1.0 / 0.3 / 0.3, Adam 1e-3. The regression targets are standardized with train-period
statistics before fitting (so the loss weights compare like with like) and mapped back for
every metric. The vol head learns log vol_t60: volatility is right-skewed (a few hours carry
most of the squared error on a linear scale) and multiplicative; its prediction is mapped back
with exp and Duan's smearing factor (the train mean of exp(residual)), so it estimates the
mean, not the median. The single-task net is the same trunk with the `bqx` head only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models_ml.common.forward import ForwardPass
from models_ml.common.keras import load_keras

TASKS = ("bqx", "vol", "regime")
LOSS_WEIGHTS = {"bqx": 1.0, "vol": 0.3, "regime": 0.3}
TRUNK_UNITS = (256, 128)
HEAD_UNITS = {"bqx": 64, "vol": 32, "regime": 32}


@dataclass(frozen=True)
class NetConfig:
    learning_rate: float = 1e-3
    dropout: float = 0.3


def build_net(width: int, n_classes: int, tasks: tuple[str, ...], config: NetConfig):
    """A compiled Keras model with one named output per task (outputs keyed by task name)."""
    keras = load_keras()
    layers = keras.layers
    inputs = keras.Input(shape=(width,), name="inputs")
    x = inputs
    for units in TRUNK_UNITS:
        x = layers.Dense(units, activation="relu", name=f"shared_{units}")(x)
        x = layers.BatchNormalization(name=f"shared_{units}_bn")(x)
        x = layers.Dropout(config.dropout, name=f"shared_{units}_dropout")(x)
    outputs, losses, metrics = {}, {}, {}
    for task in tasks:
        hidden = layers.Dense(HEAD_UNITS[task], activation="relu", name=f"{task}_hidden")(x)
        if task == "regime":
            outputs[task] = layers.Dense(n_classes, activation="softmax", name=task)(hidden)
            losses[task] = "sparse_categorical_crossentropy"
            metrics[task] = ["sparse_categorical_accuracy"]
        else:
            outputs[task] = layers.Dense(1, name=task)(hidden)
            losses[task] = "mse"
            metrics[task] = ["mae"]
    name = "multi_task_nn" if len(tasks) > 1 else "single_task_nn"
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=losses,
        loss_weights={task: LOSS_WEIGHTS[task] for task in tasks},
        metrics=metrics,
    )
    return model


VOL_FLOOR = 1e-6  # vol_t60 below this (a frozen quote) counts as this before the log


@dataclass(frozen=True)
class TargetScaler:
    """Mean and scale of the regression targets on the train period (vol: of log vol), and
    the smearing factor that maps predicted log vol back to a mean."""

    bqx_mean: float
    bqx_scale: float
    log_vol_mean: float
    log_vol_scale: float
    vol_smearing: float = 1.0

    @classmethod
    def fit(cls, bqx: np.ndarray, vol: np.ndarray) -> TargetScaler:
        def scale(v: np.ndarray) -> float:
            s = float(np.std(v))
            return s if np.isfinite(s) and s > 1e-12 else 1.0

        log_vol = log_of(vol)
        return cls(float(np.mean(bqx)), scale(bqx), float(np.mean(log_vol)), scale(log_vol))

    def with_smearing(self, vol: np.ndarray, net_vol: np.ndarray) -> TargetScaler:
        """Duan's smearing factor from train targets and the net's standardized log-vol
        predictions of them: mean(vol / exp(predicted log vol))."""
        median = np.exp(
            np.asarray(net_vol, np.float64).reshape(-1) * self.log_vol_scale + self.log_vol_mean
        )
        factor = float(np.mean(np.maximum(np.asarray(vol, np.float64), VOL_FLOOR) / median))
        return replace(self, vol_smearing=factor if np.isfinite(factor) and factor > 0 else 1.0)

    def to_net(self, task: str, values: np.ndarray) -> np.ndarray:
        if task == "vol":
            return ((log_of(values) - self.log_vol_mean) / self.log_vol_scale).astype(np.float32)
        return ((values - self.bqx_mean) / self.bqx_scale).astype(np.float32)

    def from_net(self, task: str, values: np.ndarray) -> np.ndarray:
        z = np.asarray(values, dtype=np.float64).reshape(-1)
        if task == "vol":
            return np.exp(z * self.log_vol_scale + self.log_vol_mean) * self.vol_smearing
        return z * self.bqx_scale + self.bqx_mean


def log_of(vol: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(vol, np.float64), VOL_FLOOR))


def net_targets(targets, scaler: TargetScaler, tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The fit targets of each task (standardized regressions, integer classes)."""
    out = {}
    for task in tasks:
        if task == "regime":
            out[task] = targets.regime.astype(np.int32)
        else:
            out[task] = scaler.to_net(task, getattr(targets, task))
    return out


@dataclass(frozen=True)
class Predictions:
    bqx: np.ndarray  # float64 (n,)
    vol: np.ndarray | None  # float64 (n,)
    regime_proba: np.ndarray | None  # float32 (n, classes)

    @property
    def regime(self) -> np.ndarray | None:
        return None if self.regime_proba is None else self.regime_proba.argmax(axis=1)


def predict(model, x: np.ndarray, scaler: TargetScaler, batch_size: int = 4096) -> Predictions:
    """Predictions in target units, whatever heads the model has. `model` is a Keras model
    (float32, TensorFlow: training and scoring) or its ForwardPass (float64, row by row
    independent: every stored prediction, batch and live)."""
    if isinstance(model, ForwardPass):
        raw = model(x)
    else:
        raw = model.predict(x, batch_size=batch_size, verbose=0)
    if not isinstance(raw, dict):  # a one-head model returns its lone output as an array
        raw = {"bqx": raw}
    return Predictions(
        bqx=scaler.from_net("bqx", raw["bqx"]),
        vol=scaler.from_net("vol", raw["vol"]) if "vol" in raw else None,
        regime_proba=np.asarray(raw["regime"], dtype=np.float32) if "regime" in raw else None,
    )


def best_epochs(history: dict[str, list[float]]) -> dict[str, int]:
    """1-based epoch of the lowest validation loss: `total` (the weights kept) and per head."""
    out = {"total": int(np.argmin(history["val_loss"])) + 1}
    for task in TASKS:
        key = f"val_{task}_loss"
        if key in history:
            out[task] = int(np.argmin(history[key])) + 1
    return out
