"""Shared fixtures: one real PostgreSQL per test session (embedded, or BQX_DATABASE_URL)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
import pytest

from bqx import db
from bqx.config import Settings
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.ingest.loader import ingest_files
from bqx.periods import load_periods
from bqx.sql import ensure_raw_schema
from bqx.synth import SynthConfig, write_market

REPO = Path(__file__).resolve().parents[2]
REAL_DATA = REPO.parent / "shared" / "data" / "fx_m1"

# The generated market most build tests share: ten days across the January/February boundary
SYNTH_START = date(2024, 1, 28)  # a Sunday
SYNTH_DAYS = 10
CUTOFF = pd.Timestamp("2024-02-06 12:00", tz="UTC")  # the truncated build ends here
TRAIN_END = "2024-02-03"  # pinned, so truncated and full builds share the train period
BASE_TABLES = [
    "rate_index",
    "bqx_values",
    "reg_rate",
    "reg_bqx",
    "volatility",
    "returns",
    "price_position",
    "time_features",
    "bqx_lags",
    "sister_correlation",
]
CROSS_PAIR_TABLES = [
    "cross_pair_momentum",
    "cross_pair_volatility",
    "cross_pair_correlation_drift",
    "cross_pair_lead_lag",
]
FEATURE_TABLES = BASE_TABLES + CROSS_PAIR_TABLES
# every table a tail build writes (the partitioned models), compared with a batch build
TAIL_TABLES = ["int_m1_grid_filled", "int_m1_series", *FEATURE_TABLES, "ml_targets"]
# Links of the generated market (ground_truth.json "pair_links") stored as if `bqx granger`
# had found them, so the lead-lag model has filled slots: EURJPY gets two leaders.
PLANTED_LEAD_LAGS = [
    ("GBPUSD", "EURUSD", 5, 0.030),
    ("EURUSD", "EURJPY", 3, 0.020),
    ("GBPJPY", "EURJPY", 5, 0.025),
    ("AUDUSD", "NZDUSD", 7, 0.015),
]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """A PostgreSQL server for the session: BQX_DATABASE_URL, else an embedded one."""
    external = os.environ.get("BQX_DATABASE_URL")
    if external:
        yield external
        return
    embedded = Settings(home=tmp_path_factory.mktemp("bqx_server"))
    url = db.start_embedded(embedded)
    yield url
    db.stop_embedded(embedded)


@pytest.fixture(scope="session")
def make_settings(server_url, tmp_path_factory):
    """Factory: Settings for a fresh database of its own on the session's server."""
    created: list[str] = []
    admin = psycopg2.connect(server_url)
    admin.autocommit = True

    def make(label: str) -> Settings:
        name = f"bqx_test_{label}_{uuid.uuid4().hex[:6]}"
        with admin.cursor() as cur:
            cur.execute(f"create database {name}")
        created.append(name)
        params = db.parse_database_url(server_url)
        url = (
            f"postgresql://{params.user}:{params.password}@/{name}"
            f"?host={params.host}&port={params.port}"
        )
        return Settings(home=tmp_path_factory.mktemp(f"home_{label}"), database_url=url)

    yield make
    with admin.cursor() as cur:
        for name in created:
            cur.execute(f"drop database if exists {name} with (force)")
    admin.close()


@pytest.fixture(scope="session")
def settings(make_settings) -> Settings:
    """Settings of the database shared by the ingest tests."""
    return make_settings("ingest")


@pytest.fixture()
def conn(settings):
    connection = db.connect(settings)
    with connection:
        ensure_raw_schema(connection)
    yield connection
    connection.close()


@pytest.fixture()
def empty_raw(conn):
    """The raw tables, emptied before the test."""
    with conn, conn.cursor() as cur:
        cur.execute("truncate raw.m1_bars, raw.m1_bars_rejected, raw.ingest_log")
    return conn


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "EURUSD.csv.gz").exists():
        pytest.skip(f"real HistData bars not found at {REAL_DATA} (../shared/data/fx_m1)")
    return REAL_DATA


def count(conn, sql: str, params=None) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return int(cur.fetchone()[0])


@pytest.fixture(scope="session")
def market(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("market")
    write_market(SynthConfig(start=SYNTH_START, days=SYNTH_DAYS, seed=11), out)
    return out


def truncated_copy(market: Path, out: Path, cutoff: pd.Timestamp) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for path in market.glob("*.csv.gz"):
        frame = pd.read_csv(path)
        frame[pd.to_datetime(frame["ts_utc"], utc=True) <= cutoff].to_csv(
            out / path.name, index=False
        )
    return out


def plant_lead_lag_relationships(conn) -> None:
    """bqx.lead_lag_relationships as `bqx granger` writes it, holding PLANTED_LEAD_LAGS."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            create schema if not exists bqx;
            create table if not exists bqx.lead_lag_relationships (
                leader text, follower text, lag_minutes integer, f_stat float8,
                p_value float8, p_adjusted float8, effect_size float8,
                train_start timestamptz, train_end timestamptz,
                primary key (leader, follower)
            );
            truncate bqx.lead_lag_relationships;
            """
        )
        for leader, follower, lag, effect in PLANTED_LEAD_LAGS:
            cur.execute(
                "insert into bqx.lead_lag_relationships values "
                "(%s, %s, %s, 50.0, 1e-12, 1e-10, %s, %s, %s)",
                (leader, follower, lag, effect, f"{SYNTH_START} 00:00+00", f"{TRAIN_END} 00:00+00"),
            )


@pytest.fixture(scope="session")
def built(make_settings, market, tmp_path_factory):
    """Build on data truncated at CUTOFF, keep a snapshot in schema `truncated`, then build
    on the full data. Shared by the build, point-in-time and cross-pair tests."""
    settings = make_settings("builds")
    conn = db.connect(settings)
    scope = BuildScope.parse(train_end=TRAIN_END)
    ingest_files(conn, [truncated_copy(market, tmp_path_factory.mktemp("cut"), CUTOFF)])
    plant_lead_lag_relationships(conn)
    assert run_dbt(settings, ["build"], scope=scope) == 0, "dbt build failed on truncated data"
    with conn, conn.cursor() as cur:
        cur.execute("drop schema if exists truncated cascade; create schema truncated")
        for table in [*FEATURE_TABLES, "regime_thresholds_fitted"]:
            cur.execute(f"create table truncated.{table} as select * from bqx.{table}")
    ingest_files(conn, [market])
    assert run_dbt(settings, ["build"], scope=scope) == 0, "dbt build failed on full data"
    yield settings, conn
    conn.close()


# The shared market's default split puts the validation period on a weekend plus the Monday
# morning before the 630-minute windows refill: no feature rows. The ML tests end validation
# on Monday evening (test then starts an embargo later); ml_periods is restored afterwards.
VALIDATION_END = datetime(2024, 2, 5, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def split(built):
    """The built database's periods with validation ending at VALIDATION_END (module-long)."""
    _, conn = built
    with conn, conn.cursor() as cur:
        cur.execute("select period, start_utc, end_utc from bqx.ml_periods")
        saved = cur.fetchall()
        cur.execute(
            "update bqx.ml_periods set end_utc = %s where period = 'validation';"
            "update bqx.ml_periods set start_utc = %s + embargo_minutes * interval '1 minute' "
            "where period = 'test'",
            (VALIDATION_END, VALIDATION_END),
        )
    yield load_periods(conn)
    with conn, conn.cursor() as cur:
        for period, start, end in saved:
            cur.execute(
                "update bqx.ml_periods set start_utc = %s, end_utc = %s where period = %s",
                (start, end, period),
            )


def table_rows(conn, table: str) -> pd.DataFrame:
    """Every row of bqx.<table>, ordered by its key."""
    with conn, conn.cursor() as cur:
        cur.execute(f"select * from bqx.{table} order by pair, ts_utc")
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def assert_same_table(live: pd.DataFrame, batch: pd.DataFrame, table: str) -> None:
    """The same keys, exactly; the same values to 1e-9 relative (NaN = NaN)."""
    assert list(live.columns) == list(batch.columns), table
    assert len(live) == len(batch), f"{table}: {len(live)} rows live, {len(batch)} batch"
    keys = ["pair", "ts_utc"]
    assert live[keys].equals(batch[keys]), f"{table}: different (pair, ts_utc) keys"
    for column in live.columns:
        a, b = live[column], batch[column]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            a, b = a.astype("float64").to_numpy(), b.astype("float64").to_numpy()
            assert (
                (a == b) | np.isclose(a, b, rtol=1e-9, atol=0) | (np.isnan(a) & np.isnan(b))
            ).all(), f"{table}.{column} differs"
        else:
            assert a.equals(b), f"{table}.{column} differs"


# the model tables the live loop's model step writes (models_ml/live.py)
MODEL_TABLES = ("autoencoder_embeddings", "multitask_predictions")
