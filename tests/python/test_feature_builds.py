"""dbt builds on a generated market: dbt tests pass, point in time, partial month rebuilds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bqx import db
from bqx.cli import app
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.ingest import ingest_files
from bqx.synth import SynthConfig, write_market

FEATURE_TABLES = [
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
CUTOFF = pd.Timestamp("2024-02-06 12:00", tz="UTC")
START = date(2024, 1, 28)  # a Sunday: ten days across the January/February boundary


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("market")
    write_market(SynthConfig(start=START, days=10, seed=11), out)
    return out


def truncated_copy(market: Path, out: Path, cutoff: pd.Timestamp) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for path in market.glob("*.csv.gz"):
        frame = pd.read_csv(path)
        frame[pd.to_datetime(frame["ts_utc"], utc=True) <= cutoff].to_csv(
            out / path.name, index=False
        )
    return out


def snapshot(conn, schema: str) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(f"drop schema if exists {schema} cascade; create schema {schema}")
        for table in FEATURE_TABLES:
            cur.execute(f"create table {schema}.{table} as select * from bqx.{table}")


def differing_rows(conn, left: str, right: str, where: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            f"select count(*) from (select * from {left} where {where} "
            f"except all select * from {right} where {where}) as d"
        )
        return int(cur.fetchone()[0])


@pytest.fixture(scope="module")
def built(make_settings, market, tmp_path_factory):
    """Build on data truncated at CUTOFF, keep a snapshot, then build on the full data."""
    settings = make_settings("builds")
    conn = db.connect(settings)
    ingest_files(conn, [truncated_copy(market, tmp_path_factory.mktemp("cut"), CUTOFF)])
    assert run_dbt(settings, ["build"]) == 0, (
        "dbt build (models and tests) failed on truncated data"
    )
    snapshot(conn, "truncated")
    ingest_files(conn, [market])
    assert run_dbt(settings, ["build"]) == 0, "dbt build (models and tests) failed on full data"
    yield settings, conn
    conn.close()


@pytest.mark.parametrize("table", FEATURE_TABLES)
def test_features_at_or_before_t_do_not_change_when_later_bars_arrive(built, table):
    _, conn = built
    cutoff = f"ts_utc <= timestamptz '{CUTOFF.isoformat()}'"
    with conn.cursor() as cur:
        cur.execute(f"select count(*) from truncated.{table} where {cutoff}")
        assert cur.fetchone()[0] > 1000, "the truncated build produced too few rows to compare"
    # every row the truncated build emitted is in the full build, bit for bit...
    assert differing_rows(conn, f"truncated.{table}", f"bqx.{table}", cutoff) == 0
    # ...and the full build has nothing else before T, except minutes forward-filled after a
    # pair's last truncated bar (their existence depends on the next bar, not their values)
    settled = f"ts_utc <= timestamptz '{(CUTOFF - pd.Timedelta(minutes=61)).isoformat()}'"
    assert differing_rows(conn, f"bqx.{table}", f"truncated.{table}", settled) == 0


def test_every_table_has_every_pair_and_month_partition(built):
    _, conn = built
    with conn.cursor() as cur:
        cur.execute(
            """
            select parent.relname, count(*)
            from pg_inherits as i
            join pg_class as child on i.inhrelid = child.oid
            join pg_class as parent on i.inhparent = parent.oid
            join pg_namespace as n on parent.relnamespace = n.oid
            where n.nspname = 'bqx' and parent.relname = any(%s)
            group by parent.relname
            """,
            (FEATURE_TABLES,),
        )
        pair_branches = dict(cur.fetchall())
        cur.execute(
            "select count(*) from pg_class c join pg_namespace n on c.relnamespace = n.oid "
            "where n.nspname = 'bqx' and c.relname = 'reg_bqx_eurusd_2024_02'"
        )
        assert cur.fetchone()[0] == 1
    assert pair_branches == {table: 28 for table in FEATURE_TABLES}


def test_rebuilding_one_month_reproduces_it_and_leaves_others_alone(built):
    settings, conn = built
    snapshot(conn, "full_build")
    scope = BuildScope.parse(months="2024-02")
    assert run_dbt(settings, ["run"], scope=scope) == 0
    for table in FEATURE_TABLES:
        january = "ts_utc < timestamptz '2024-02-01 00:00+00'"
        assert differing_rows(conn, f"full_build.{table}", f"bqx.{table}", january) == 0
        february = pd.read_sql(
            f"select * from bqx.{table} where ts_utc >= '2024-02-01' order by pair, ts_utc", conn
        )
        reference = pd.read_sql(
            f"select * from full_build.{table} where ts_utc >= '2024-02-01' order by pair, ts_utc",
            conn,
        )
        assert len(february) == len(reference) > 0, table
        numeric = reference.select_dtypes("number").columns
        pd.testing.assert_frame_equal(
            february[numeric], reference[numeric], rtol=1e-9, atol=1e-12, check_exact=False
        )
        other = reference.columns.difference(numeric)
        pd.testing.assert_frame_equal(february[other], reference[other])


def test_features_list_reports_the_matrix_width_from_the_database(built, monkeypatch):
    settings, conn = built
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    with conn.cursor() as cur:
        cur.execute("select * from bqx.ml_feature_matrix limit 1")
        width = len(cur.description) - 2
        cur.execute("select count(*) from bqx.ml_feature_matrix")
        assert cur.fetchone()[0] > 0
    result = CliRunner().invoke(app, ["features", "list"])
    assert result.exit_code == 0, result.output
    assert f"{width} feature columns" in result.stdout
