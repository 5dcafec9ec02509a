"""Settings read once from the environment at the edge (CLI, tests) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where a run keeps its state.

    home: `$BQX_HOME` (default `./.bqx`): embedded database, artifacts, reports.
    database_url: `$BQX_DATABASE_URL`; None means the embedded PostgreSQL under home/pgdata.
    """

    home: Path
    database_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("BQX_HOME", ".bqx")).expanduser().resolve()
        url = os.environ.get("BQX_DATABASE_URL") or None
        return cls(home=home, database_url=url)

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def uses_embedded(self) -> bool:
        return self.database_url is None
