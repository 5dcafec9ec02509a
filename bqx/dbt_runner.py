"""Run dbt against the configured database: env vars for profiles.yml, vars for the scope."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bqx import db
from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.pairs import parse_pairs

PROJECT_DIR = Path(__file__).resolve().parents[1]
_MONTH_RANGE = re.compile(r"^(\d{4})-(\d{2})(?:\.\.(\d{4})-(\d{2}))?$")


@dataclass(frozen=True)
class BuildScope:
    """Which pairs and months a build touches; None means everything."""

    pairs: tuple[str, ...] | None = None
    month_from: str | None = None  # YYYY-MM-01
    month_to: str | None = None  # YYYY-MM-01, inclusive
    train_end: str | None = None  # YYYY-MM-DD: pins the end of the train period
    validation_end: str | None = None  # YYYY-MM-DD: pins the end of the validation period
    tail_from: str | None = None  # 'YYYY-MM-DD HH:MM:00+00': a tail build from this minute

    @classmethod
    def parse(
        cls,
        pairs: str | None = None,
        months: str | None = None,
        train_end: str | None = None,
        validation_end: str | None = None,
    ) -> BuildScope:
        pair_list = tuple(parse_pairs(pairs)) if pairs else None
        ends = _period_ends(train_end, validation_end)
        if not months:
            return cls(pairs=pair_list, **ends)
        match = _MONTH_RANGE.match(months.strip())
        if not match:
            raise BqxUserError(f"bad --months {months!r}: use YYYY-MM or YYYY-MM..YYYY-MM")
        y1, m1, y2, m2 = match.groups()
        y2, m2 = (y2 or y1), (m2 or m1)
        for month in (m1, m2):
            if not 1 <= int(month) <= 12:
                raise BqxUserError(f"bad month in --months {months!r}")
        first, last = f"{y1}-{m1}-01", f"{y2}-{m2}-01"
        if last < first:
            raise BqxUserError(f"--months {months!r} ends before it starts")
        return cls(pairs=pair_list, month_from=first, month_to=last, **ends)

    def as_vars(self) -> dict:
        out: dict = {}
        if self.pairs:
            out["pairs"] = list(self.pairs)
        if self.month_from:
            out["month_from"] = self.month_from
            out["month_to"] = self.month_to
        if self.train_end:
            out["train_end"] = self.train_end
        if self.validation_end:
            out["validation_end"] = self.validation_end
        if self.tail_from:
            out["tail_from"] = self.tail_from
        return out


def _period_ends(train_end: str | None, validation_end: str | None) -> dict[str, str | None]:
    """Validated --train-end / --validation-end (YYYY-MM-DD, in that order)."""
    parsed = {}
    for name, text in (("train_end", train_end), ("validation_end", validation_end)):
        if text is None:
            parsed[name] = None
            continue
        try:
            parsed[name] = date.fromisoformat(text.strip()).isoformat()
        except ValueError:
            flag = "--" + name.replace("_", "-")
            raise BqxUserError(f"bad {flag} {text!r}: use YYYY-MM-DD") from None
    ends = parsed["train_end"], parsed["validation_end"]
    if all(ends) and ends[1] <= ends[0]:
        raise BqxUserError("--validation-end must come after --train-end")
    return parsed


BUILD_LOCK = "bqx build"  # one build (full, scoped or tail) per database at a time
BUILD_BUSY = (
    "another `bqx build` is running on this database: wait for it to end (a build killed "
    "with kill -9 releases the lock within seconds)"
)

POSTGRES_TARGET = "postgres"
SPARK_SESSION_TARGET = "spark"  # dbt-spark `method: session`, Spark inside the dbt process
SPARK_LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")


@functools.cache
def _project_vars() -> dict:
    import yaml  # PyYAML, a dbt dependency

    return yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text()).get("vars", {})


def project_var(name: str):
    """A var declared in dbt_project.yml: numbers that the SQL and Python must share (the
    lead-lag significance level and lag cap) are written there once (and read once)."""
    declared = _project_vars()
    if name not in declared:
        raise KeyError(f"dbt_project.yml declares no var {name!r}")
    return declared[name]


def dbt_target(target: str | None = None) -> str:
    """The profiles.yml output a run uses: `target`, else BQX_DBT_TARGET, else postgres."""
    chosen = (target or os.environ.get("BQX_DBT_TARGET") or POSTGRES_TARGET).strip()
    if not re.match(r"^[a-z][a-z0-9_]*$", chosen):
        raise BqxUserError(f"bad dbt target {chosen!r}: a profiles.yml output name")
    return chosen


@dataclass(frozen=True)
class SparkPaths:
    """Where a local Spark session keeps its state, and the parquet bars it reads."""

    home: Path  # metastore_db, warehouse/ (the built tables), derby.log
    raw: str  # BQX_SPARK_RAW_PATH: local directory or cluster URI of the parquet store

    @classmethod
    def of(cls, settings: Settings) -> SparkPaths:
        home = Path(os.environ.get("BQX_SPARK_HOME") or settings.home / "spark")
        raw = os.environ.get("BQX_SPARK_RAW_PATH") or str(home / "raw")
        return cls(home=home.resolve(), raw=raw)


def check_spark_session() -> None:
    """A local Spark session needs Java and pyspark; say so in one line when either is missing."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise BqxUserError(
            "the spark target needs Java 17 (`java` on PATH or JAVA_HOME): "
            "apt-get install openjdk-17-jre-headless"
        )
    if (
        importlib.util.find_spec("pyspark") is None
        or importlib.util.find_spec("dbt.adapters.spark") is None
    ):
        raise BqxUserError(
            "the spark target needs pyspark and dbt-spark in this environment: run `make setup`"
        )


def check_spark_raw(settings: Settings, target: str) -> None:
    """Before a local Spark build: the parquet bars must be there (a cluster path is not
    checked from here)."""
    if target != SPARK_SESSION_TARGET:
        return
    raw = SparkPaths.of(settings).raw
    if "://" not in raw and not any(Path(raw, "m1_bars").glob("pair=*/*/*.parquet")):
        raise BqxUserError(
            f"no parquet bars under {raw}/m1_bars: run `bqx ingest PATH --to parquet` "
            "or `bqx export-parquet` first"
        )


def dbt_env(settings: Settings, target: str | None = None) -> dict[str, str]:
    chosen = dbt_target(target)
    env = dict(os.environ)
    env["BQX_DBT_TARGET"] = chosen
    if chosen == POSTGRES_TARGET:
        params = db.parse_database_url(db.database_url(settings))
        env.update(params.as_dbt_env())
        # the server ends a dbt session within 2 s of its client dying (PostgreSQL >= 14), so
        # a killed build's statement stops instead of running on behind a re-run
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c client_connection_check_interval=2000"
    if chosen == SPARK_SESSION_TARGET:
        check_spark_session()
        spark = SparkPaths.of(settings)
        spark.home.mkdir(parents=True, exist_ok=True)
        env["BQX_SPARK_HOME"] = str(spark.home)
        env["BQX_SPARK_RAW_PATH"] = spark.raw
        env.setdefault(
            "BQX_SPARK_JAVA_OPTIONS", f"-Dlog4j2.configurationFile=file:{SPARK_LOG_CONFIG}"
        )
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # compiled SQL, run results and logs under BQX_HOME: concurrent runs never collide
    env["DBT_TARGET_PATH"] = str(dbt_target_dir(settings, chosen))
    env["DBT_LOG_PATH"] = str(settings.home / "dbt" / "logs")
    return env


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def dbt_target_dir(settings: Settings, target: str | None = None) -> Path:
    """dbt's compiled SQL and run results, kept per BQX_HOME (and per non-default target) so
    that runs never collide."""
    chosen = dbt_target(target)
    name = "target" if chosen == POSTGRES_TARGET else f"target-{chosen}"
    return settings.home / "dbt" / name


def dbt_command(settings: Settings, args: list[str], scope: BuildScope | None = None) -> list[str]:
    command = [dbt_executable(), *args, "--project-dir", str(PROJECT_DIR)]
    command += ["--profiles-dir", str(PROJECT_DIR)]
    if scope and scope.as_vars():
        command += ["--vars", json.dumps(scope.as_vars())]
    return command


def _die_with_parent(parent_pid: int) -> None:
    """In the dbt child before exec: the kernel sends it SIGKILL when its parent dies, so a
    `bqx build` killed with kill -9 never leaves dbt writing behind a re-run (Linux; a no-op
    where prctl is missing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died between fork and prctl
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def run_dbt(
    settings: Settings,
    args: list[str],
    scope: BuildScope | None = None,
    target: str | None = None,
) -> int:
    """Run one dbt command in the project; returns dbt's exit code. dbt dies with this
    process (PR_SET_PDEATHSIG), and its database sessions end when it does."""
    return subprocess.call(
        dbt_command(settings, args, scope),
        env=dbt_env(settings, target),
        cwd=PROJECT_DIR,
        preexec_fn=functools.partial(_die_with_parent, os.getpid()),
    )


def failure_summary(settings: Settings, target: str, code: int, started: float) -> str:
    """One line after a failed dbt run, from its run_results.json (if written after
    `started`, a time.time()): how many nodes erred, failed or were skipped, and the first
    error (dbt's own output above it has the rest)."""
    path = dbt_target_dir(settings, target) / "run_results.json"
    try:
        if path.stat().st_mtime < started:
            raise OSError("run_results.json of an earlier run")
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return f"dbt exited with code {code} before running any node (its output above says why)"
    failed = [r for r in results if r["status"] in ("error", "fail", "runtime error")]
    errors = sum(r["status"] != "fail" for r in failed)
    skipped = sum(r["status"] == "skipped" for r in results)
    line = (
        f"dbt failed: {errors} errors, {len(failed) - errors} failing tests, {skipped} skipped "
        f"of {len(results)} nodes"
    )
    if failed:
        first = failed[0]
        message = (first.get("message") or "").strip().splitlines() or [""]
        line += f"; first: {first['unique_id']}: {db.redact(message[0])[:200]}"
    return line + f"; log: {settings.home / 'dbt' / 'logs' / 'dbt.log'}"
