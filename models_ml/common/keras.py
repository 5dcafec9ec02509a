"""Keras for every stage: TensorFlow's C++ logging quieted before its first import, and one
seed for python, numpy and TensorFlow generators."""

from __future__ import annotations

import os


def load_keras(seed: int | None = None):
    """Keras with TensorFlow's C++ logging quiet (must be set before the first import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow generators
    return keras
