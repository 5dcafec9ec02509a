"""Run every benchmark under bench/ and collect their reports in bench/results.md.

Each benchmark is a module with a `main()` returning a report dict and a `print_report()`;
it runs in its own process (`python -m bench.<name>`) so peak-memory figures do not mix.
Every section of results.md names the machine and the load it ran under, and what it
measures (the first line of the benchmark's docstring); `make bench BENCH="ingest granger"`
runs some of them, and their sections replace only theirs in an existing results.md; a full
run keeps the sections of the opt-in benchmarks it does not run (full_year, ...). results.md
holds benchmark output only: hand-written measurements (A/B comparisons, by-hand runs) go to
bench/history.md, which no run rewrites.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common
from bqx import db
from bqx.config import Settings

BENCH_DIR = Path(__file__).resolve().parent
SKIP = {"__init__", "common", "run_all"}
OPT_IN = {
    "full_year",
    "online_real",
    "real_2017",
}  # too long for every `make bench`: run them by name


def benchmarks(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in SKIP)
    unknown = set(selected) - set(names)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; known: {names}")
    if selected:
        return [n for n in names if n in selected]
    return [n for n in names if n not in OPT_IN]


def summary_line(name: str) -> str:
    """First line of the benchmark's module docstring (what it measures)."""
    doc = ast.get_docstring(ast.parse((BENCH_DIR / f"{name}.py").read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def previous_sections(results: Path) -> dict[str, str]:
    """Sections of an existing results.md by benchmark name (kept when not re-run)."""
    if not results.exists():
        return {}
    parts = re.split(r"(?m)^(?=## )", results.read_text())
    return {m.group(1): part for part in parts if (m := re.match(r"## (\w+) ", part))}


def stop_bench_servers() -> None:
    """Stop the embedded servers the benchmarks started under .bqx/bench: each keeps its
    shared buffers (1 GB) resident until it stops, and a full run left nine running."""
    if os.environ.get("BQX_DATABASE_URL"):
        return
    for pgdata in sorted((common.REPO / ".bqx" / "bench").glob("*/pgdata")):
        db.stop_embedded(Settings(home=pgdata.parent))


def main(selected: list[str]) -> int:
    results = BENCH_DIR / "results.md"
    fresh: dict[str, str] = {}
    failures = 0
    for name in benchmarks(selected):
        print(f"== bench/{name}.py", flush=True)
        load = os.getloadavg()[0]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        stop_bench_servers()
        print(run.stdout, end="", flush=True)
        if run.returncode != 0:
            failures += 1
            print(run.stderr[-3000:], file=sys.stderr)
        status = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        body = run.stdout if run.returncode == 0 else run.stderr[-3000:]
        fresh[name] = (
            f"## {name} — {status}, {seconds:.0f} s\n\n{summary_line(name)}\n\n"
            f"Machine: {common.machine()}; run {stamp}, 1-minute load average {load:.1f} "
            "at the start.\n"
            f"\n```\n{body.rstrip()}\n```\n"
        )
    # the other sections are read now, not at the start: a long run must not put back what
    # another bench or a merge wrote to results.md meanwhile
    known = set(benchmarks([])) | OPT_IN
    kept = {name: text for name, text in previous_sections(results).items() if name in known}
    sections = kept | fresh
    results.write_text(
        "# Benchmark results\n\nWritten by `make bench` (`python -m bench.run_all`). Every "
        "figure is from the machine named in its section; ratios compare against references "
        "measured in the same run.\n\n" + "\n".join(sections[n] for n in sorted(sections))
    )
    print(f"wrote {results}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
