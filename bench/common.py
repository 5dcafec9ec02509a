"""Shared pieces of the benchmarks: an isolated database, real data slices, memory sampling."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import psutil

from bqx import db
from bqx.config import Settings
from bqx.dbt_runner import dbt_target_dir

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "fx_m1"


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.node()} ({os.cpu_count()} cores, {memory:.0f} GiB, {platform.python_version()})"
    )


def require_real_data() -> Path:
    if not (REAL_DATA / "EURUSD.csv.gz").exists():
        raise SystemExit(f"real data not found at {REAL_DATA}: the benchmarks need ../shared")
    return REAL_DATA


def bench_settings(name: str, fresh: bool = True) -> Settings:
    """A database of the bench's own, under BQX_DATABASE_URL's server if set, else an embedded
    one: dropped and created anew, or with `fresh=False` kept when it exists."""
    home = REPO / ".bqx" / "bench" / name
    home.mkdir(parents=True, exist_ok=True)
    base = Settings(home=home, database_url=os.environ.get("BQX_DATABASE_URL"))
    server = db.database_url(base)
    conn = db.psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (f"bench_{name}",))
        exists = cur.fetchone() is not None
        if fresh or not exists:
            cur.execute(f"drop database if exists bench_{name} with (force)")
            cur.execute(f"create database bench_{name}")
    conn.close()
    params = db.parse_database_url(server)
    url = f"postgresql://{params.user}:{params.password}@/bench_{name}?host={params.host}&port={params.port}"
    return Settings(home=home, database_url=url)


def write_month_slices(pairs: list[str], month: str, out: Path) -> int:
    """Write <PAIR>.csv of one month (YYYY-MM) of the real 2017 files; returns rows written."""
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for pair in pairs:
        frame = pd.read_csv(REAL_DATA / f"{pair}.csv.gz")
        frame = frame[frame["ts_utc"].str.startswith(month)]
        frame.to_csv(out / f"{pair}.csv", index=False)
        total += len(frame)
    return total


def dbt_node_seconds(
    settings: Settings, target: str | None = None, kind: str | None = None
) -> dict[str, float]:
    """Seconds per node of the last dbt command (its run_results.json), by node name; only
    the nodes of one `kind` ("model", "test", ...) when given."""
    path = dbt_target_dir(settings, target) / "run_results.json"
    results = json.loads(path.read_text())["results"]
    return {
        r["unique_id"].split(".")[-1]: r["execution_time"]
        for r in results
        if kind is None or r["unique_id"].startswith(f"{kind}.")
    }


def dbt_node_timeline(settings: Settings, kind: str = "model") -> dict[str, tuple[float, float]]:
    """Start and end of each node's execution in the last dbt command, in seconds since its
    first node started, by node name (only nodes of `kind`). A two-thread build's idle time
    is what the timeline shows and the per-node seconds cannot: which models ran beside which,
    and which ran alone at the end."""
    path = dbt_target_dir(settings) / "run_results.json"
    spans = {}
    for result in json.loads(path.read_text())["results"]:
        execute = [t for t in result["timing"] if t["name"] == "execute"]
        if execute and execute[0]["started_at"]:
            spans[result["unique_id"]] = (
                pd.Timestamp(execute[0]["started_at"]),
                pd.Timestamp(execute[0]["completed_at"]),
            )
    if not spans:
        return {}
    first = min(start for start, _ in spans.values())
    return {
        node.split(".")[-1]: ((start - first).total_seconds(), (end - first).total_seconds())
        for node, (start, end) in spans.items()
        if node.startswith(f"{kind}.")
    }


def _pss(proc: psutil.Process) -> int:
    # PSS splits shared pages (PostgreSQL's shared buffers) among the processes mapping them,
    # so the sum over processes is not inflated the way summed RSS is
    try:
        return proc.memory_full_info().pss
    except (psutil.Error, AttributeError):
        return proc.memory_info().rss


def server_cpu_seconds(server_pid: int) -> float:
    """User + system CPU seconds of a PostgreSQL server so far: the postmaster's own, its live
    children's, and those of the children it has already reaped (a backend's time is added to
    the postmaster's children times when the backend exits), so the difference of two calls is
    the server's work in between, whichever backends did it and whether they still exist."""
    server = psutil.Process(server_pid)
    times = server.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in server.children():
        with suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


@contextmanager
def peak_memory(result: dict, server_pid: int | None = None, key: str = "peak_pss_gib"):
    """Sample the summed PSS of this process tree and the bench's PostgreSQL server (the
    postmaster `server_pid` and its children) every 0.5 s; other servers are not counted."""
    stop = threading.Event()
    peak = [0]

    def sample() -> None:
        me = psutil.Process()
        while not stop.is_set():
            procs = [me, *me.children(recursive=True)]
            if server_pid is not None:
                with suppress(psutil.Error):
                    server = psutil.Process(server_pid)
                    procs += [server, *server.children()]
            total = 0
            for proc in procs:
                with suppress(psutil.Error):
                    total += _pss(proc)
            peak[0] = max(peak[0], total)
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        result[key] = peak[0] / 2**30
