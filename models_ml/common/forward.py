"""The saved Keras nets' inference as a float64 numpy forward pass, one row independent of
the others: the same function for a month block of `bqx embed` / `bqx predict multitask` and
for the 1-28 rows of a live minute, so batch and live store the same values (issue 15).

Why not `model.predict`: TensorFlow computes in float32 and picks its kernels by the batch's
shape, so a row's output may depend on how many rows came with it. Measured here on an
encoder of the autoencoder's architecture (200 inputs, TF 2.21, 2 cores): rows predicted one
at a time differ from the same rows in a block of 8,192 by up to 2.6e-6 absolute (4.5e-4
relative near zero), far outside the 1e-9 of issue 15's batch = live proof (in 28-row blocks
they happened to agree bitwise, as did the tests' tiny nets: nothing to rely on). numpy in
float64 has the same trap at a smaller scale: OpenBLAS multiplies a 1-row matrix with gemv,
whose sums run in another order than gemm's (measured here: 1 row vs the same row inside
8,192 rows differ by ~4e-14 absolute). So every product here is one gemm of exactly
CHUNK_ROWS rows (the last chunk padded with zeros): each row then meets the same kernel with
the same summation order wherever it sits, and its output is bitwise the same alone, in a
live minute of 28 rows or in a month of 8,192 (tests/python/test_live_models.py checks 1 /
28 / 8,192 rows for bitwise equality; plain numpy gemm gave equal rows for any 2 ... 8,192
rows here, but that is OpenBLAS' business). A float32 cast of equal float64 values is equal,
so the stored `real` columns are too.

What it evaluates: the functional graph of the saved model (layer configs in the order Keras
serialises them, which is topological) with the layers the project's nets use, Dense with
linear / relu / softmax, BatchNormalization with its moving statistics (inference), Dropout
(the identity at inference) and Add; any other layer is refused when the pass is built, so a
new architecture cannot be evaluated wrongly in silence. The weights are read once, as
float64. Against `model.predict` the outputs agree to float32's precision (the test asks 1e-4
relative on the trained nets; seen: ~1e-6).

Cost, measured here (2 cores, load average 3.5-4.6 from other jobs; a trained encoder of 200
inputs, a multi-task net of 264): the encoder runs 67,000 rows/s (TensorFlow's predict: 83,000),
a live minute of 28 rows in 0.9 ms, and 28 pairs' nets on one row each in 12 ms. BLAS runs on
one thread inside the pass: with OpenBLAS' two threads the same work took 13,000 rows/s and
47 ms (hand-offs between threads on small products on busy cores). Bigger chunks did not pay
on two threads either (8,192 rows: 33,000 rows/s) and make a live minute pay for the padding
(28 pairs' nets through 8,192-row chunks: 3.1 s); on one thread 32 rows gave 63,000 rows/s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

CHUNK_ROWS = 64  # rows of every matrix product: live minutes are one chunk, months many

_ACTIVATIONS = ("linear", "relu", "softmax")


@dataclass(frozen=True)
class Step:
    """One layer of the graph: its kind, the layers it reads and its float64 weights."""

    name: str
    kind: str  # dense | batch_norm | identity | add
    inputs: tuple[str, ...]
    weights: tuple[np.ndarray, ...] = ()
    activation: str = "linear"


@dataclass(frozen=True)
class ForwardPass:
    """A saved Keras functional model evaluated in float64 numpy (see the module docstring)."""

    input_name: str
    width: int
    steps: tuple[Step, ...]
    outputs: str | tuple[tuple[str, str], ...]  # one layer, or (output key, layer) pairs

    @classmethod
    def of(cls, model: Any) -> ForwardPass:
        """The pass of a Keras functional model (its config and weights, read once)."""
        config = model.get_config()
        layers = config["layers"]
        inputs = [layer for layer in layers if layer["class_name"] == "InputLayer"]
        if len(inputs) != 1:
            raise ValueError(f"{model.name}: {len(inputs)} input layers, the pass takes one")
        input_name = inputs[0]["name"]
        shape = inputs[0]["config"].get("batch_shape") or inputs[0]["config"].get("shape")
        steps = tuple(
            _step(layer, model.get_layer(layer["name"]))
            for layer in layers
            if layer["class_name"] != "InputLayer"
        )
        known = {input_name}
        for step in steps:  # the config lists the layers in topological order
            missing = [name for name in step.inputs if name not in known]
            if missing:
                raise ValueError(f"{model.name}: {step.name} reads {missing} before they exist")
            known.add(step.name)
        out = config["output_layers"]
        if isinstance(out, Mapping):
            outputs: str | tuple[tuple[str, str], ...] = tuple(
                (key, _history_name(value)) for key, value in out.items()
            )
        else:
            outputs = _history_name(out)
        return cls(input_name, int(shape[-1]), steps, outputs)

    def __call__(self, x: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        """The model's output(s) for rows `x` (n, width), float64, CHUNK_ROWS rows at a time."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.width:
            raise ValueError(f"rows of shape {x.shape}, the model takes (n, {self.width})")
        names = [self.outputs] if isinstance(self.outputs, str) else [n for _, n in self.outputs]
        blocks = []
        with _one_blas_thread():
            for rows, chunk in _chunks(x):
                values = self._chunk(chunk)
                blocks.append({name: values[name][: len(rows)] for name in names})
        if not blocks:
            stacked = {name: np.empty((0, self._units(name))) for name in names}
        else:
            stacked = {name: np.vstack([b[name] for b in blocks]) for name in names}
        if isinstance(self.outputs, str):
            return stacked[self.outputs]
        return {key: stacked[name] for key, name in self.outputs}

    def _chunk(self, chunk: np.ndarray) -> dict[str, np.ndarray]:
        values = {self.input_name: chunk}
        for step in self.steps:
            values[step.name] = _apply(step, [values[name] for name in step.inputs])
        return values

    def _units(self, name: str) -> int:
        if name == self.input_name:
            return self.width
        step = next(s for s in self.steps if s.name == name)
        if step.kind == "dense":
            return step.weights[0].shape[1]
        return self._units(step.inputs[0])


_controller: list[ThreadpoolController] = []


def _one_blas_thread() -> Any:
    """BLAS limited to one thread for the block: products of CHUNK_ROWS rows are too small to
    share, and OpenBLAS' thread hand-offs cost more than they save on 2 busy cores."""
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")


def _chunks(x: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rows, the CHUNK_ROWS-row block holding them, zero-padded) over x."""
    for start in range(0, len(x), CHUNK_ROWS):
        rows = x[start : start + CHUNK_ROWS]
        if len(rows) == CHUNK_ROWS:
            yield rows, rows
        else:
            padded = np.zeros((CHUNK_ROWS, x.shape[1]))
            padded[: len(rows)] = rows
            yield rows, padded


def _history_name(tensor: Any) -> str:
    """The layer name of a serialised keras tensor reference ([layer, node, index])."""
    if isinstance(tensor, Mapping):
        return _history_name(tensor["config"]["keras_history"])
    if isinstance(tensor, list | tuple) and len(tensor) == 1:
        return _history_name(tensor[0])
    return str(tensor[0])


def _inbound(layer: dict) -> tuple[str, ...]:
    """The names of the layers a layer config reads (its single call's tensor arguments)."""
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) != 1:
        raise ValueError(f"{layer['name']}: called {len(nodes)} times, the pass takes once")
    names: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__":
            names.append(str(value["config"]["keras_history"][0]))
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    collect(nodes[0]["args"])
    return tuple(names)


def _step(layer: dict, keras_layer: Any) -> Step:
    kind_of = {"Dense": "dense", "BatchNormalization": "batch_norm", "Dropout": "identity"}
    kind = kind_of.get(layer["class_name"], "add" if layer["class_name"] == "Add" else None)
    if kind is None:
        raise ValueError(f"layer {layer['name']} ({layer['class_name']}) is not supported")
    config = layer["config"]
    weights = [np.asarray(w, dtype=np.float64) for w in keras_layer.get_weights()]
    inputs = _inbound(layer)
    if kind == "dense":
        activation = config.get("activation") or "linear"
        if activation not in _ACTIVATIONS:
            raise ValueError(f"layer {layer['name']}: activation {activation!r} not supported")
        kernel = weights[0]
        bias = weights[1] if config.get("use_bias", True) else np.zeros(kernel.shape[1])
        return Step(layer["name"], kind, inputs, (kernel, bias), activation)
    if kind == "batch_norm":
        return Step(layer["name"], kind, inputs, _batch_norm(layer, weights))
    return Step(layer["name"], kind, inputs)


def _batch_norm(layer: dict, weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, offset) of a BatchNormalization at inference: y = x * m + o with
    m = gamma / sqrt(moving_var + eps), o = beta - moving_mean * m (Keras' own arrangement)."""
    config = layer["config"]
    if config.get("axis", -1) not in (-1, [-1], 1, [1]) or config.get("renorm"):
        raise ValueError(f"layer {layer['name']}: only last-axis batch norm is supported")
    found = list(weights)
    gamma = found.pop(0) if config.get("scale", True) else None
    beta = found.pop(0) if config.get("center", True) else None
    mean, variance = found
    multiplier = 1.0 / np.sqrt(variance + float(config.get("epsilon", 1e-3)))
    if gamma is not None:
        multiplier = multiplier * gamma
    offset = -mean * multiplier
    if beta is not None:
        offset = offset + beta
    return multiplier, offset


def _apply(step: Step, inputs: list[np.ndarray]) -> np.ndarray:
    if step.kind == "dense":
        kernel, bias = step.weights
        out = inputs[0] @ kernel + bias
        if step.activation == "relu":
            return np.maximum(out, 0.0)
        if step.activation == "softmax":
            shifted = np.exp(out - out.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        return out
    if step.kind == "batch_norm":
        multiplier, offset = step.weights
        return inputs[0] * multiplier + offset
    if step.kind == "add":
        total = inputs[0]
        for other in inputs[1:]:
            total = total + other
        return total
    return inputs[0]
