"""A small HTTP server for the dashboard: every request re-reads the tables (reload = refresh)."""

from __future__ import annotations

import html
import logging
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from bqx import db
from bqx.config import Settings
from bqx.dashboard.data import DashboardConfig, load_dashboard_data
from bqx.dashboard.render import render_page
from bqx.errors import BqxUserError

log = logging.getLogger(__name__)

PATHS = ("/", "/index.html", "/dashboard.html")


def build_page(settings: Settings, config: DashboardConfig, interactive: bool = False) -> str:
    """Query the tables and render the page (one short-lived connection)."""
    conn = db.connect(settings)
    try:
        data = load_dashboard_data(conn, config)
    finally:
        conn.close()
    return render_page(data, pair=config.pair, interactive=interactive)


def make_server(
    settings: Settings, config: DashboardConfig, host: str = "127.0.0.1", port: int = 8050
) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0 = any free port); call serve_forever() on it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            if url.path not in PATHS:
                self._send(HTTPStatus.NOT_FOUND, "<h1>404</h1><p>the dashboard is at /</p>")
                return
            pair = (parse_qs(url.query).get("pair") or [""])[0] or None
            try:
                page = build_page(settings, replace(config, pair=pair), interactive=True)
            except BqxUserError as err:  # a bad ?pair= or an unreachable database
                self._send(HTTPStatus.BAD_REQUEST, f"<h1>error</h1><p>{html.escape(str(err))}</p>")
                return
            except Exception:
                log.exception("dashboard page failed")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "<h1>error</h1><p>see the log</p>")
                return
            self._send(HTTPStatus.OK, page)

        def _send(self, status: HTTPStatus, body: str) -> None:
            payload = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")  # a reload must re-query
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - base signature
            log.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)
