"""Run every benchmark under bench/ and collect their reports in bench/results.md.

Each benchmark is a module with a `main()` returning a report dict and a `print_report()`;
it runs in its own process (`python -m bench.<name>`) so peak-memory figures do not mix.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SKIP = {"__init__", "common", "run_all"}
OPT_IN = {"full_year"}  # too long for every `make bench`: run it by name


def benchmarks(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in SKIP)
    unknown = set(selected) - set(names)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; known: {names}")
    if selected:
        return [n for n in names if n in selected]
    return [n for n in names if n not in OPT_IN]


def main(selected: list[str]) -> int:
    sections, failures = [], 0
    for name in benchmarks(selected):
        print(f"== bench/{name}.py", flush=True)
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        print(run.stdout, end="", flush=True)
        if run.returncode != 0:
            failures += 1
            print(run.stderr[-3000:], file=sys.stderr)
        status = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        body = run.stdout if run.returncode == 0 else run.stderr[-3000:]
        sections.append(f"## {name} — {status}, {seconds:.0f} s\n\n```\n{body.rstrip()}\n```\n")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = BENCH_DIR / "results.md"
    results.write_text(
        f"# Benchmark results\n\nWritten by `make bench` on {stamp}. Every figure is from the "
        "machine named in its section; ratios compare against references measured in the "
        "same run.\n\n" + "\n".join(sections)
    )
    print(f"wrote {results}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
