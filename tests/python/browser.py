"""Headless Chromium for the page tests (dashboard, dbt docs), plus a loopback static server.

The `chromium` fixture finds Debian's chromium, installs it with apt when running as root
(about 30 s here), and otherwise skips with the command to run. Pages are driven with plain
command-line switches (--dump-dom, --screenshot), no CDP client or Playwright.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "apt-get update && apt-get install -y chromium"

# No sandbox (root in a container), no GPU, and no background traffic: the machine is offline.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class Chromium:
    """One headless browser binary; each call starts a fresh profile in `profile_root`."""

    executable: str
    profile_root: Path

    def _run(self, args: list[str], url: str, timeout: float) -> subprocess.CompletedProcess:
        profile = self.profile_root / f"profile_{time.monotonic_ns()}"
        command = [self.executable, *FLAGS, f"--user-data-dir={profile}", *args, url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        shutil.rmtree(profile, ignore_errors=True)
        return result

    def dump_dom(
        self,
        url: str,
        size: tuple[int, int] = (1400, 1000),
        budget_ms: int = 5000,
        timeout: float = 90,
    ) -> str:
        """The DOM after load and `budget_ms` of virtual time (scripts have run)."""
        args = [f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}"]
        result = self._run([*args, "--dump-dom"], url, timeout)
        assert result.returncode == 0, f"chromium --dump-dom failed: {result.stderr[-2000:]}"
        return result.stdout

    def screenshot(
        self,
        url: str,
        path: Path,
        size: tuple[int, int] = (1400, 2000),
        budget_ms: int = 5000,
        timeout: float = 90,
    ) -> Path:
        args = [
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={path}",
        ]
        result = self._run(args, url, timeout)
        assert path.exists(), f"chromium wrote no screenshot: {result.stderr[-2000:]}"
        return path


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture(tmp_path_factory) -> Chromium:
    """Chromium for the session; tests import this fixture and ask for `chromium`."""
    executable = find_chromium()
    if executable is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(
            ["bash", "-c", INSTALL],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            timeout=900,
            check=False,
        )
        executable = find_chromium()
    if executable is None:
        pytest.skip(f"chromium not installed and not root: run `sudo sh -c '{INSTALL}'`")
    return Chromium(executable, tmp_path_factory.mktemp("chromium"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60) -> None:
    """Return once `url` answers (any status); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - base signature
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pixel_spread(path: Path) -> tuple[float, int]:
    """(standard deviation of the grey levels, number of distinct colours) of a PNG."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    return float(pixels.mean(axis=2).std()), len(colours)
