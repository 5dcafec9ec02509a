"""The same dbt project on Spark (`--target spark`, a local PySpark session) builds the same
features as on PostgreSQL: every row and column of the base and cross-pair tables."""

from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from bqx import db
from bqx.dbt_runner import BuildScope, SparkPaths, check_spark_session, run_dbt
from bqx.errors import BqxUserError
from bqx.ingest.loader import ingest_files
from bqx.ingest.parquet_store import PARTITION_COLUMN, ParquetStore, export_from_postgres
from bqx.synth import SynthConfig, write_market

from .conftest import BASE_TABLES, CROSS_PAIR_TABLES, PLANTED_LEAD_LAGS, count

pytestmark = pytest.mark.spark  # runs in `make test`; `pytest -m "not spark"` leaves it out

# Four currencies, six pairs: every pair has four sisters here, and two planted lead-lag links
# fill slots. Four days across a month boundary, so tables have two month partitions.
SPARK_PAIRS = ("EURUSD", "GBPUSD", "EURGBP", "USDJPY", "EURJPY", "GBPJPY")
SPARK_START = date(2024, 1, 28)  # a Sunday
SPARK_DAYS = 5
SPARK_TRAIN_END = "2024-01-31"
INTERMEDIATE_TABLES = ["int_m1_grid_filled", "int_m1_series"]
FEATURE_TABLES = INTERMEDIATE_TABLES + BASE_TABLES + CROSS_PAIR_TABLES + ["ml_targets"]
RELATIVE_TOLERANCE = 1e-6
# values this close to 0 on both engines are equal (a relative error is meaningless there)
ZERO = 1e-12
SPARK_ENV = {
    "BQX_SPARK_CORES": "2",
    "BQX_SPARK_DRIVER_MEMORY": "1g",
    "BQX_SPARK_SHUFFLE_PARTITIONS": "4",
}


def _spark_available() -> None:
    try:
        check_spark_session()
    except BqxUserError as err:
        pytest.skip(str(err))


def _plant_links(conn) -> None:
    links = [
        link for link in PLANTED_LEAD_LAGS if link[0] in SPARK_PAIRS and link[1] in SPARK_PAIRS
    ]
    assert len(links) >= 2
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            create schema if not exists bqx;
            create table bqx.lead_lag_relationships (
                leader text, follower text, lag_minutes integer, f_stat float8,
                p_value float8, p_adjusted float8, effect_size float8,
                train_start timestamptz, train_end timestamptz,
                primary key (leader, follower)
            );
            """
        )
        for leader, follower, lag, effect in links:
            cur.execute(
                "insert into bqx.lead_lag_relationships values "
                "(%s, %s, %s, 50.0, 1e-12, 1e-10, %s, %s, %s)",
                (
                    leader,
                    follower,
                    lag,
                    effect,
                    f"{SPARK_START} 00:00+00",
                    f"{SPARK_TRAIN_END} 00:00+00",
                ),
            )


@pytest.fixture(scope="module")
def both_builds(make_settings, tmp_path_factory):
    """The generated market built on PostgreSQL, exported to parquet and built on Spark."""
    _spark_available()
    settings = make_settings("spark")
    market = tmp_path_factory.mktemp("spark_market")
    write_market(SynthConfig(start=SPARK_START, days=SPARK_DAYS, pairs=SPARK_PAIRS, seed=5), market)
    conn = db.connect(settings)
    try:
        ingest_files(conn, [market])
        _plant_links(conn)
        scope = BuildScope.parse(train_end=SPARK_TRAIN_END)
        assert run_dbt(settings, ["build"], scope=scope) == 0, "postgres build"

        store = ParquetStore(Path(SparkPaths.of(settings).raw))
        exported = export_from_postgres(conn, store)
        assert exported.rows == count(conn, "select count(*) from raw.m1_bars")
        assert exported.lead_lag_rows == count(
            conn, "select count(*) from bqx.lead_lag_relationships"
        )
        with pytest.MonkeyPatch.context() as env:
            for key, value in SPARK_ENV.items():
                env.setenv(key, value)
            code = run_dbt(settings, ["build"], scope=scope, target="spark")
            assert code == 0, "spark build (see the dbt log under BQX_HOME/dbt/logs)"
        yield settings, conn
    finally:
        conn.close()
    shutil.rmtree(SparkPaths.of(settings).home, ignore_errors=True)


def postgres_table(conn, table: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(f"select * from bqx.{table}")
        names = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)


def spark_table(settings, table: str) -> pd.DataFrame:
    """The files Spark wrote for bqx.<table> (Hive layout: pair=…/partition_month=…)."""
    location = SparkPaths.of(settings).home / "warehouse" / "bqx.db" / table
    frame = ds.dataset(location, format="parquet", partitioning="hive").to_table().to_pandas()
    assert PARTITION_COLUMN in frame, f"{table}: not partitioned by month on Spark"
    months = pd.to_datetime(frame["ts_utc"], utc=True).dt.strftime("%Y-%m-01")
    assert (months == frame[PARTITION_COLUMN].astype(str)).all(), f"{table}: rows in wrong months"
    return frame.drop(columns=[PARTITION_COLUMN])


def relative_errors(pg: pd.Series, spark: pd.Series) -> np.ndarray:
    a, b = pg.to_numpy(dtype=float), spark.to_numpy(dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.abs(a - b) / scale
    return np.where(scale < ZERO, 0.0, error)


def differences(pg: pd.DataFrame, spark: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """Per column, what differs between the two builds (empty: the same table)."""
    problems: dict[str, str] = {}
    if set(pg.columns) != set(spark.columns):
        return {"columns": f"postgres {sorted(pg.columns)} vs spark {sorted(spark.columns)}"}
    for frame in (pg, spark):  # instants in UTC at one resolution on both sides
        for column in frame.columns:
            if column == "ts_utc" or pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = pd.to_datetime(frame[column], utc=True).astype(
                    "datetime64[us, UTC]"
                )
    merged = pg.merge(spark, on=keys, how="outer", suffixes=("_pg", "_spark"), indicator=True)
    only = merged["_merge"].value_counts()
    if only.get("left_only", 0) or only.get("right_only", 0):
        problems["rows"] = (
            f"{only.get('left_only', 0)} rows only on postgres, "
            f"{only.get('right_only', 0)} only on spark"
        )
        return problems
    for column in (c for c in pg.columns if c not in keys):
        left, right = merged[f"{column}_pg"], merged[f"{column}_spark"]
        if (left.isna() != right.isna()).any():
            problems[column] = f"{int((left.isna() != right.isna()).sum())} NULLs differ"
            continue
        present = left.notna()
        left, right = left[present], right[present]
        if pd.api.types.is_numeric_dtype(left) and not pd.api.types.is_bool_dtype(left):
            worst = float(relative_errors(left, right).max(initial=0.0))
            if not worst < RELATIVE_TOLERANCE or math.isnan(worst):
                problems[column] = f"relative error up to {worst:.3g}"
        elif (left.astype(str).to_numpy() != right.astype(str).to_numpy()).any():
            problems[column] = f"{int((left.astype(str) != right.astype(str)).sum())} values differ"
    return problems


@pytest.mark.parametrize("table", FEATURE_TABLES)
def test_spark_builds_every_feature_value_of_postgres(both_builds, table):
    settings, conn = both_builds
    pg, spark = postgres_table(conn, table), spark_table(settings, table)
    assert len(pg) > 1000, f"{table}: too few rows to compare"
    assert set(pg["pair"]) == set(SPARK_PAIRS)
    assert differences(pg, spark, ["pair", "ts_utc"]) == {}


def test_spark_picks_the_same_sisters_and_lead_lag_slots(both_builds):
    settings, conn = both_builds
    keys = ["pair", "sister_slot"]
    pg = postgres_table(conn, "sister_pair_selection").sort_values(keys)
    location = SparkPaths.of(settings).home / "warehouse" / "bqx.db" / "sister_pair_selection"
    spark = ds.dataset(location, format="parquet").to_table().to_pandas().sort_values(keys)
    assert list(pg["sister"]) == list(spark["sister"])
    lead_lag = postgres_table(conn, "cross_pair_lead_lag")
    assert (lead_lag.filter(like="leader_1_") != 0).any().any(), "no planted leader reached Spark"


def test_comparison_fails_on_one_perturbed_value(both_builds):
    """The comparison is not vacuous: one value off by 1e-5 relative is reported."""
    settings, conn = both_builds
    pg, spark = postgres_table(conn, "reg_bqx"), spark_table(settings, "reg_bqx")
    row = spark.index[len(spark) // 2]
    spark.loc[row, "w240_linear_term"] *= 1 + 1e-5
    assert list(differences(pg, spark, ["pair", "ts_utc"])) == ["w240_linear_term"]
    spark = spark.drop(index=row)
    assert list(differences(pg, spark, ["pair", "ts_utc"])) == ["rows"]
