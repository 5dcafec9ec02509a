"""`bqx online serve` as a process of its own, for the live loop's tests (test_live_proof,
test_live_models): start it, wait for what it does (polling the database or its log), stop it
as a service manager does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd


def start_serve(
    settings, log: Path, pairs: Sequence[str], extra: Sequence[str] = ()
) -> subprocess.Popen:
    """`bqx online serve --pairs ... --arf-models 1 --poll-seconds 2 [extra]`, its output
    appended to `log`."""
    env = {
        **os.environ,
        "BQX_HOME": str(settings.home),
        "BQX_DATABASE_URL": settings.database_url,
        "PYTHONUNBUFFERED": "1",  # its lines reach the log as they are printed
    }
    args = ["online", "serve", "--pairs", ",".join(pairs), "--arf-models", "1"]
    args += ["--poll-seconds", "2", *extra]
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bqx.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def until(serve: subprocess.Popen, log: Path, done: Callable[[], bool], what: str) -> None:
    """Poll `done()` until it holds (serve must keep running), at most 300 s."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert serve.poll() is None, f"serve exited:\n{log.read_text()[-3000:]}"
        if done():
            return
        time.sleep(0.5)
    raise AssertionError(f"serve did not {what}:\n{log.read_text()[-3000:]}")


def holds(conn, query: str, *params) -> bool:
    with conn, conn.cursor() as cur:
        cur.execute(query, params)
        return bool(cur.fetchone()[0])


def wait_stepped(conn, serve: subprocess.Popen, minute: pd.Timestamp, log: Path, pair: str) -> None:
    """Until serve has stored its prediction of `pair` for `minute` (it stepped the minute)."""
    query = (
        "select to_regclass('bqx.online_predictions') is not null and exists (select 1"
        " from bqx.online_predictions where pair = %s and ts_utc = %s)"
    )
    until(serve, log, lambda: holds(conn, query, pair, minute.to_pydatetime()), f"step {minute}")


def wait_started(serve: subprocess.Popen, log: Path, minute: pd.Timestamp, times: int) -> None:
    """Until serve printed its step of `minute` `times` times in all: its first look (it steps
    only the newest minute then, so bars must come after it)."""
    line = f"{minute:%Y-%m-%d %H:%M} predicted"
    until(serve, log, lambda: log.read_text().count(line) >= times, "start")


def stop_serve(serve: subprocess.Popen, log: Path) -> None:
    serve.send_signal(signal.SIGTERM)  # as a service manager stops it: checkpoint, exit
    assert serve.wait(timeout=120) == 0, log.read_text()[-3000:]
