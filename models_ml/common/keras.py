"""Keras for every stage, quiet on the user's terminal, with one seed for python, numpy and
TensorFlow generators.

TensorFlow 2.21 prints its oneDNN notice through absl's C++ logging before absl is set up, so
TF_CPP_MIN_LOG_LEVEL does not hide it (seen here: two lines on stderr per process, 20 in a
`make demo`); the first import therefore runs with file descriptor 2 pointed at /dev/null. A
failed import still raises its Python exception. The `tensorflow` logger's retracing warnings
(6 per `bqx train multitask` of the demo) are library noise too: only errors pass. With
`bqx --verbose` both are shown (TensorFlow's own diagnostics, for whoever asked for details).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (C++ writes go there too)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_keras(seed: int | None = None):
    """Keras with TensorFlow's start-up notices and retracing warnings kept off the terminal,
    unless the CLI runs with --verbose (the root logger at INFO): then they are shown."""
    verbose = logging.getLogger().isEnabledFor(logging.INFO)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" not in sys.modules:
        with nullcontext() if verbose else _stderr_silenced():
            import keras  # noqa: F401  (the first import prints the notices)
            import tensorflow as tf

            tf.constant(0.0)  # the second notice comes with the first op
    import keras

    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if seed is not None:
        keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow generators
    return keras
