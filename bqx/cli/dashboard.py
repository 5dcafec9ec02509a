"""`bqx dashboard`: serve the online-monitoring page (registered in bqx/cli/__init__.py)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from bqx.cli._shared import console, user_errors
from bqx.config import Settings
from bqx.errors import BqxUserError


@user_errors
def dashboard(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8050,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    pair: Annotated[str | None, typer.Option(help="Default pair (default: all).")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Write reports/dashboard.html and exit.")
    ] = False,
):
    """Serve the online-learning dashboard: accuracy, ensemble weights, drift, updates."""
    from bqx.dashboard import DashboardConfig, write_dashboard
    from bqx.dashboard.server import make_server

    if not 0 <= port <= 65535:
        raise BqxUserError(f"bad --port {port}: use 0-65535 (0 picks a free one)")
    settings = Settings.from_env()
    config = DashboardConfig(pair=pair)
    if write:
        console.print(f"dashboard: {write_dashboard(settings, config)}", highlight=False)
        return
    try:
        server = make_server(settings, config, host=host, port=port)
    except OSError as err:  # port taken, bad host
        raise BqxUserError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    bound_host, bound_port = server.server_address[:2]
    console.print(
        f"dashboard on http://{bound_host}:{bound_port}/ (reload to refresh, Ctrl-C to stop)",
        highlight=False,
    )
    logging.getLogger(__name__).info("serving on %s:%s", bound_host, bound_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
