"""Reading a trained stage's manifest.json: one error path for every stage, so a missing or
broken manifest always reads as one line telling the user which command to run."""

from __future__ import annotations

import json
from pathlib import Path

from bqx.errors import BqxUserError


def read_manifest(path: Path, what: str, command: str) -> dict:
    """The JSON manifest at `path`; BqxUserError when there is none (`what` was never
    trained: run `command`) or it is not valid JSON."""
    if not path.exists():
        raise BqxUserError(f"no trained {what} in {path.parent}: run `{command}` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BqxUserError(f"{path} is not valid JSON: {err}") from None
