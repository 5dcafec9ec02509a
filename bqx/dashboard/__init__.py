"""Monitoring dashboard of the online learner (issue 7): data → charts → one HTML page.

`write_dashboard(settings)` writes the static page; `bqx dashboard` serves it live.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bqx.config import Settings
from bqx.dashboard.data import DashboardConfig
from bqx.dashboard.server import build_page

log = logging.getLogger(__name__)

__all__ = ["DashboardConfig", "write_dashboard"]


def write_dashboard(settings: Settings, config: DashboardConfig | None = None) -> Path:
    """Write the dashboard as one self-contained page to $BQX_HOME/reports/dashboard.html."""
    page = build_page(settings, config or DashboardConfig())
    path = settings.reports_dir / "dashboard.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    log.info("dashboard written to %s", path)
    return path
