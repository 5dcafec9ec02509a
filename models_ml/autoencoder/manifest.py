"""Where the autoencoder's artifacts live, and the check that a model meets its own features.

The manifest is the contract between training and every later use of the model: it lists the
input columns in order. A model applied to a matrix whose columns moved, appeared or vanished
would produce embeddings that look fine and mean nothing, so `check_features` refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import InputColumn
from models_ml.common.manifests import read_manifest

EMBEDDING_DIM = 64
RECONSTRUCTION_MAE_TARGET = 0.05  # the plan's target, standardized units


@dataclass(frozen=True)
class AutoencoderArtifacts:
    """File names of one trained autoencoder under `$BQX_HOME/artifacts`."""

    directory: Path

    @classmethod
    def of(cls, settings: Settings) -> AutoencoderArtifacts:
        return cls(settings.artifacts_dir)

    @property
    def model(self) -> Path:
        return self.directory / "autoencoder.keras"

    def h5_export(self, width: int) -> Path:
        return self.directory / f"autoencoder_{width}_to_{EMBEDDING_DIM}.h5"

    @property
    def extractor(self) -> Path:
        return self.directory / "embedding_extractor.keras"

    @property
    def scaler(self) -> Path:
        return self.directory / "feature_scaler.pkl"

    @property
    def manifest(self) -> Path:
        return self.directory / "autoencoder_manifest.json"

    @property
    def training_rows(self) -> Path:
        return self.directory / "autoencoder_training_rows.npz"

    @property
    def checkpoint(self) -> Path:
        return self.directory / "autoencoder_checkpoint.keras"


def load_manifest(artifacts: AutoencoderArtifacts) -> dict:
    """The manifest of the trained autoencoder; a clear error when there is none."""
    manifest = read_manifest(artifacts.manifest, "autoencoder", "bqx train autoencoder")
    if not isinstance(manifest.get("features"), list):
        raise BqxUserError(f"{artifacts.manifest} has no feature list: retrain the autoencoder")
    return manifest


def check_features(manifest: dict, columns: Sequence[InputColumn]) -> None:
    """Raise BqxUserError unless the database's input columns are the manifest's, in order."""
    trained: list[str] = list(manifest["features"])
    current = [column.name for column in columns]
    if current == trained:
        trained_types = manifest.get("feature_types") or [c.data_type for c in columns]
        changed = [
            f"{c.name} ({old} -> {c.data_type})"
            for c, old in zip(columns, trained_types, strict=True)
            if c.data_type != old
        ]
        if changed:
            raise BqxUserError(
                f"feature columns changed type since the autoencoder was trained: "
                f"{_names(changed)}. Retrain with `bqx train autoencoder`."
            )
        return
    missing = [name for name in trained if name not in current]
    extra = [name for name in current if name not in trained]
    problems = []
    if missing:
        problems.append(f"missing from the database: {_names(missing)}")
    if extra:
        problems.append(f"not known to the model: {_names(extra)}")
    if not problems:
        moved = next(i for i, (a, b) in enumerate(zip(trained, current, strict=True)) if a != b)
        problems.append(
            f"same columns in another order (position {moved}: model has {trained[moved]!r}, "
            f"database has {current[moved]!r})"
        )
    raise BqxUserError(
        f"the feature matrix no longer matches the trained autoencoder ({len(trained)} "
        f"features in the manifest, {len(current)} in the database): {'; '.join(problems)}. "
        "Retrain with `bqx train autoencoder`."
    )


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
