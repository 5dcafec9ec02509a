"""dbt builds on a generated market: dbt tests pass, point in time, partial month rebuilds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bqx import db
from bqx.cli import app
from bqx.dbt_runner import BuildScope, dbt_target_dir, run_dbt
from bqx.ingest.loader import ingest_files
from bqx.synth import SynthConfig, write_market

from .conftest import CUTOFF, FEATURE_TABLES, REPO, SYNTH_START, TRAIN_END


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
    scope = BuildScope.parse(months="2024-02", train_end=TRAIN_END)
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


def test_a_market_of_three_pairs_still_fills_the_feature_matrix(make_settings, tmp_path):
    """Sisters without any bars count as flat (correlation 0) instead of emptying every row."""
    pairs = ("EURUSD", "GBPUSD", "EURGBP")
    write_market(SynthConfig(start=SYNTH_START, days=4, pairs=pairs, seed=5), tmp_path)
    settings = make_settings("three_pairs")
    conn = db.connect(settings)
    ingest_files(conn, [tmp_path])
    args = ["run", "--select", "+sister_correlation", "--exclude", "resource_type:seed"]
    assert run_dbt(settings, ["seed"]) == 0
    assert run_dbt(settings, args) == 0
    correlations = pd.read_sql(
        "select * from bqx.sister_correlation where pair = 'EURUSD' order by ts_utc", conn
    )
    conn.close()
    assert len(correlations) > 1000
    sisters = pd.read_csv(REPO / "seeds" / "sister_pairs.csv").query("pair == 'EURUSD'")
    for row in sisters.itertuples():
        column = f"sister_{row.sister_rank:02d}_corr_60"
        if row.sister in pairs:  # a real correlation: varies, inside [-1, 1]
            assert correlations[column].std() > 0.05, column
            assert correlations[column].abs().max() <= 1
        else:
            assert (correlations[column] == 0).all(), column


def test_regime_thresholds_are_fitted_on_train_rows_only(built):
    """The truncated build (bars cut at CUTOFF, days after the pinned train end) fitted the
    same thresholds as the full build, bit for bit: no row after the train end enters them."""
    _, conn = built
    with conn.cursor() as cur:
        cur.execute("select count(*) from bqx.regime_thresholds_fitted")
        assert cur.fetchone()[0] == 28
    cut, full = "truncated.regime_thresholds_fitted", "bqx.regime_thresholds_fitted"
    assert differing_rows(conn, cut, full, "true") == differing_rows(conn, full, cut, "true") == 0


def train_targets(conn) -> pd.DataFrame:
    """ml_targets rows whose 60-minute horizon ends before the train end."""
    return pd.read_sql(
        "select t.pair, t.bqx_t60, t.vol_t60, t.regime_t60 from bqx.ml_targets as t "
        "cross join (select end_utc from bqx.ml_periods where period = 'train') as p "
        "where t.ts_utc + interval '60 minutes' < p.end_utc",
        conn,
    )


def test_regime_thresholds_are_the_train_quantiles_of_the_seed_shares(built):
    """Oracle: numpy's linear-interpolation quantiles of each pair's train targets, vol first,
    then bqx among the rows that are not high_vol."""
    _, conn = built
    targets = train_targets(conn)
    fitted = pd.read_sql("select * from bqx.regime_thresholds_fitted", conn).set_index("pair")
    for pair, rows in targets.groupby("pair"):
        high_vol = np.quantile(rows["vol_t60"], 0.95)
        calm = rows.loc[~(rows["vol_t60"] > high_vol), "bqx_t60"]
        expected = {
            "high_vol_threshold": high_vol,
            "strong_bull_threshold": np.quantile(calm, 1 - 0.10 / 0.95),
            "bull_threshold": np.quantile(calm, 1 - 0.30 / 0.95),
            "strong_bear_threshold": np.quantile(calm, 0.10 / 0.95),
            "bear_threshold": np.quantile(calm, 0.30 / 0.95),
        }
        assert fitted.loc[pair, "train_rows"] == len(rows), pair
        for column, value in expected.items():
            expected_value = pytest.approx(value, rel=1e-9, abs=1e-12)
            assert fitted.loc[pair, column] == expected_value, (pair, column)


def test_train_class_shares_are_the_seed_shares(built):
    """On the generated market every label exists and takes its target share of each pair's
    train rows (seeds/regime_thresholds.csv), the majority class 35%, not 90%+."""
    _, conn = built
    targets = train_targets(conn)
    seed = pd.read_csv(REPO / "seeds" / "regime_thresholds.csv")
    spec = seed.set_index("regime")["target_share"]
    assert spec.sum() == pytest.approx(1.0)
    shares = targets.groupby("pair")["regime_t60"].value_counts(normalize=True)
    shares = shares.unstack(fill_value=0)
    assert set(shares.columns) == set(spec.index)
    deviation = (shares[spec.index] - spec).abs()
    assert deviation.max().max() < 0.005, deviation.max()


def test_column_rules_fail_on_a_planted_null_and_out_of_range_value_and_name_them(built):
    """reg_bqx's null and range rules run as one test (one scan): a row with w60_r2 = 1.5 and
    a NULL w90_rmse fails it, and the failing row names both broken rules (null rules first)."""
    settings, conn = built
    with conn, conn.cursor() as cur:
        cur.execute(
            "select pair, ts_utc, w60_r2, w90_rmse from bqx.reg_bqx order by pair, ts_utc limit 1"
        )
        pair, ts_utc, r2, rmse = cur.fetchone()
        cur.execute(
            "update bqx.reg_bqx set w60_r2 = 1.5, w90_rmse = null where pair = %s and ts_utc = %s",
            (pair, ts_utc),
        )
    try:
        args = ["test", "--select", "reg_bqx,test_name:column_rules", "--store-failures"]
        assert run_dbt(settings, args) != 0
        run_results = json.loads((dbt_target_dir(settings) / "run_results.json").read_text())
        results = [r for r in run_results["results"] if r["unique_id"].startswith("test.")]
        assert [(r["status"], r["failures"]) for r in results] == [("fail", 1)]
        with conn, conn.cursor() as cur:
            cur.execute(f"select pair, ts_utc, failed_rules from {results[0]['relation_name']}")
            assert cur.fetchall() == [(pair, ts_utc, "w90_rmse is null, w60_r2 > 1")]
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(
                "update bqx.reg_bqx set w60_r2 = %s, w90_rmse = %s where pair = %s and ts_utc = %s",
                (r2, rmse, pair, ts_utc),
            )
    assert run_dbt(settings, ["test", "--select", "reg_bqx,test_name:column_rules"]) == 0
