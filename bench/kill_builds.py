"""kill -9 of `bqx build` at random points of a full build: every view stays, every table is
at the old or the new version, dbt dies with the build, and a re-run succeeds (issue 18).

The database toggles between two bar sets, A (the generated market) and B (A without its last
day), so that every feature table differs between the two versions. Both are built once to
completion and fingerprinted (row count and the sum of hashtext(row::text) per table); then each
trial flips the bars, starts `bqx build`, kills it with SIGKILL after a random delay, and checks:
the views of the last complete build all exist, each table's fingerprint is A's or B's, no dbt
process outlives the build, and the next build can take the build lock. A last build must
succeed and match its bar set.

    python -m bench.kill_builds [--trials 5] [--seed 18] [--days 6] [--spread 0.5]

"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date

import psutil

from bench.common import REPO, bench_settings, machine
from bqx import db
from bqx.ingest.loader import ingest_files
from bqx.synth import SynthConfig, write_market

PAIRS = ("EURUSD", "GBPUSD", "EURGBP", "USDJPY", "EURJPY", "GBPJPY")


def tables(conn) -> list[str]:
    """The top-level tables of schema bqx (partitioned parents, plain tables, seeds)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'bqx' and c.relkind in ('r', 'p') and not c.relispartition "
            "order by 1"
        )
        return [row[0] for row in cur.fetchall()]


def views(conn) -> set[str]:
    with conn, conn.cursor() as cur:
        cur.execute("select viewname from pg_views where schemaname = 'bqx'")
        return {row[0] for row in cur.fetchall()}


def fingerprints(conn, names: list[str]) -> dict[str, tuple[int, int] | None]:
    found = {}
    with conn, conn.cursor() as cur:
        for name in names:
            cur.execute("select to_regclass(%s) is not null", (f"bqx.{name}",))
            if not cur.fetchone()[0]:
                found[name] = None
                continue
            cur.execute(
                f"select count(*), coalesce(sum(hashtext(t::text)::bigint), 0) from bqx.{name} t"
            )
            found[name] = tuple(cur.fetchone())
    return found


def set_bars(conn, full: bool, cut: str) -> None:
    """A (full=True): every bar; B: the bars before `cut` (the rest kept aside)."""
    with conn, conn.cursor() as cur:
        cur.execute("create table if not exists public.kill_bench_held (like raw.m1_bars)")
        if full:
            cur.execute("insert into raw.m1_bars select * from public.kill_bench_held")
            cur.execute("truncate public.kill_bench_held")
        else:
            cur.execute(
                "with moved as (delete from raw.m1_bars where ts_utc >= %s returning *) "
                "insert into public.kill_bench_held select * from moved",
                (cut,),
            )


def build_env(settings) -> dict[str, str]:
    return {
        **os.environ,
        "BQX_HOME": str(settings.home),
        "BQX_DATABASE_URL": settings.database_url,
    }


def full_build(settings) -> float:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bqx.cli", "build"],
        env=build_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"a complete build failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def wait_for_quiet(conn, timeout: float = 60.0) -> float:
    """Seconds until no other session is active on the bench database."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        with conn, conn.cursor() as cur:
            cur.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid()"
            )
            if cur.fetchone()[0] == 0:
                break
        time.sleep(0.2)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument(
        "--spread",
        type=float,
        default=0.5,
        help="kill within this share of a rebuild's time (the models run first, tests after)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    spread = args.spread

    settings = bench_settings("kill_builds")
    market = settings.home / "market"
    start = date(2024, 1, 7)  # a Sunday
    write_market(SynthConfig(start=start, days=args.days, pairs=PAIRS, seed=args.seed), market)
    conn = db.connect(settings)
    ingest_files(conn, [market])
    with conn, conn.cursor() as cur:
        cur.execute("select max(ts_utc)::date::text from raw.m1_bars")
        cut = cur.fetchone()[0]

    first = full_build(settings)
    names = tables(conn)
    expected_views = views(conn)
    versions = {"A": fingerprints(conn, names)}
    set_bars(conn, full=False, cut=cut)
    seconds = full_build(settings)  # a rebuild: what the trials interrupt
    versions["B"] = fingerprints(conn, names)
    same = [n for n in names if versions["A"][n] == versions["B"][n]]
    print(f"{machine()}; first build {first:.0f} s, rebuild {seconds:.0f} s; {len(names)} tables")
    print(f"views: {sorted(expected_views)}")
    print(f"tables equal in A and B (seeds, choices): {same}")

    full = False
    failures = 0
    for trial in range(1, args.trials + 1):
        full = not full
        set_bars(conn, full=full, cut=cut)
        delay = rng.uniform(3.0, seconds * spread)
        build = subprocess.Popen(
            [sys.executable, "-m", "bqx.cli", "build"],
            env=build_env(settings),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        children = psutil.Process(build.pid).children(recursive=True)
        os.kill(build.pid, signal.SIGKILL)
        build.wait()
        time.sleep(1.0)
        orphans = [c.pid for c in children if c.is_running() and c.status() != "zombie"]
        quiet = wait_for_quiet(conn)
        missing = expected_views - views(conn)
        now = fingerprints(conn, names)
        mixed = [n for n in names if now[n] not in (versions["A"][n], versions["B"][n])]
        new = sum(1 for n in names if n not in same and now[n] == versions["A" if full else "B"][n])
        ok = not (missing or mixed or orphans)
        failures += not ok
        print(
            f"trial {trial}: killed at {delay:5.1f} s toward {'A' if full else 'B'}; "
            f"dbt alive after 1 s: {orphans or 'none'}; sessions gone after {quiet:.1f} s; "
            f"views missing: {sorted(missing) or 'none'}; tables at neither version: "
            f"{mixed or 'none'}; tables already new: {new}/{len(names) - len(same)}"
            f" -> {'ok' if ok else 'FAIL'}",
            flush=True,
        )
    rerun = full_build(settings)
    final = fingerprints(conn, names)
    matches = final == versions["A" if full else "B"]
    print(f"re-run: {rerun:.0f} s, every table at the bars' version: {matches}")
    conn.close()
    if failures or not matches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
