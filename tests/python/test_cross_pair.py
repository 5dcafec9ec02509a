"""Stage 2.16 cross-pair features, recomputed with pandas from the base tables and the bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bqx.pairs import PAIRS, sister_pairs

from .conftest import CROSS_PAIR_TABLES, PLANTED_LEAD_LAGS, TRAIN_END

PAIR = "EURJPY"  # two planted leaders


def frame(conn, sql: str, params=None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        names = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)


def table_of(conn, table: str, pair: str) -> pd.DataFrame:
    return frame(
        conn, f"select * from bqx.{table} where pair = %s order by ts_utc", (pair,)
    ).set_index("ts_utc")


def selected_sisters(conn, pair: str) -> list[str]:
    rows = frame(
        conn,
        "select sister from bqx.sister_pair_selection where pair = %s order by sister_slot",
        (pair,),
    )
    return list(rows["sister"])


def test_sisters_are_the_two_most_correlated_on_the_train_period_only(built):
    _, conn = built
    bqx = frame(
        conn,
        "select pair, ts_utc, bqx_60 from bqx.bqx_values where ts_utc < %s",
        (f"{TRAIN_END} 00:00+00",),
    ).pivot(index="ts_utc", columns="pair", values="bqx_60")
    for pair in PAIRS:
        correlations = {sister: abs(bqx[pair].corr(bqx[sister])) for sister in sister_pairs(pair)}
        expected = sorted(correlations, key=lambda s: (-correlations[s], s))[:2]
        assert selected_sisters(conn, pair) == expected, (pair, correlations)


def test_every_table_has_72_features_per_pair_without_nulls(built):
    _, conn = built
    matrix = frame(conn, "select * from bqx.ml_cross_pair_features where pair = %s", (PAIR,))
    assert matrix.shape[1] - 2 == 72
    assert len(matrix) > 1000 and not matrix.isna().any().any()
    widths = {}
    for table in CROSS_PAIR_TABLES:
        widths[table] = table_of(conn, table, PAIR).shape[1] - 1  # pair column
    assert widths == {
        "cross_pair_momentum": 24,
        "cross_pair_volatility": 12,
        "cross_pair_correlation_drift": 12,
        "cross_pair_lead_lag": 24,
    }
    counts = frame(conn, "select pair, count(*) as n from bqx.ml_cross_pair_features group by 1")
    assert sorted(counts["pair"]) == sorted(PAIRS)


def test_momentum_products_multiply_the_regression_terms_of_pair_and_sister(built):
    _, conn = built
    momentum = table_of(conn, "cross_pair_momentum", PAIR)
    own = table_of(conn, "reg_bqx", PAIR)
    for slot, sister in enumerate(selected_sisters(conn, PAIR), start=1):
        other = table_of(conn, "reg_bqx", sister)
        joined = own.join(other, how="inner", suffixes=("_p", "_s"))
        assert len(joined) == len(momentum)
        for w in (60, 240, 630):
            for term, short in (("quadratic", "quad"), ("linear", "linear")):
                expected = joined[f"w{w}_{term}_term_p"] * joined[f"w{w}_{term}_term_s"]
                actual = momentum.loc[joined.index, f"sister_{slot}_momentum_product_w{w}_{short}"]
                np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


def test_volatility_ratios_and_divergence_flags(built):
    _, conn = built
    ratios = table_of(conn, "cross_pair_volatility", PAIR)
    own = table_of(conn, "volatility", PAIR)
    for slot, sister in enumerate(selected_sisters(conn, PAIR), start=1):
        other = table_of(conn, "volatility", sister).reindex(ratios.index)
        for w in (30, 60, 240, 630):
            expected = own.loc[ratios.index, f"vol_{w}"] / other[f"vol_{w}"]
            np.testing.assert_allclose(ratios[f"sister_{slot}_vol_ratio_{w}"], expected, rtol=1e-12)
        ratio = ratios[f"sister_{slot}_vol_ratio_60"]
        assert (ratios[f"sister_{slot}_is_pair_specific_event"] == (ratio > 1.5)).all()
        assert (ratios[f"sister_{slot}_is_sister_specific_event"] == (ratio < 0.67)).all()
        assert ratios[f"sister_{slot}_is_pair_specific_event"].any()


def test_correlation_drift_matches_a_pandas_rolling_correlation(built):
    _, conn = built
    drift = table_of(conn, "cross_pair_correlation_drift", PAIR)
    bars = frame(
        conn, "select pair, ts_utc, bqx_60 from bqx.int_m1_series where bqx_60 is not null"
    )
    bqx = bars.pivot(index="ts_utc", columns="pair", values="bqx_60")
    # the generated market has no gap inside its days but the weekend: a full-minute index
    minutes = pd.date_range(bqx.index.min(), bqx.index.max(), freq="min")
    bqx = bqx.reindex(minutes)
    for slot, sister in enumerate(selected_sisters(conn, PAIR), start=1):
        rolling = bqx[PAIR].rolling(60).corr(bqx[sister])
        now = rolling.reindex(drift.index)
        before = rolling.reindex(drift.index - pd.Timedelta(minutes=60)).to_numpy()
        np.testing.assert_allclose(drift[f"sister_{slot}_corr_60"], now, atol=1e-9)
        np.testing.assert_allclose(drift[f"sister_{slot}_corr_60_change"], now - before, atol=1e-9)
        relative = (now - before) / np.maximum(np.abs(before), 0.1)
        np.testing.assert_allclose(
            drift[f"sister_{slot}_corr_60_relative_change"], relative, atol=1e-7
        )
        assert (drift[f"sister_{slot}_is_coupled"] == (now > 0.3)).all()
        assert (drift[f"sister_{slot}_is_decoupled"] == (now < -0.3)).all()


def test_sister_correlations_match_a_pandas_rolling_correlation(built):
    """Every sister's 60- and 240-minute correlation with PAIR, against pandas' rolling
    correlation of bqx_60 over a full-minute index (a gap leaves NaN, so windows restart after
    it as the segments do); a row exists exactly where every sister's 240-minute window is
    full. The SQL restarts its running sums on clock blocks of 240 minutes, a window that
    reaches into the previous block carrying its tail (macro couple_block_columns): this holds
    windows inside one block and across a block start, at every offset into the block."""
    _, conn = built
    table = table_of(conn, "sister_correlation", PAIR)
    bars = frame(
        conn, "select pair, ts_utc, bqx_60 from bqx.int_m1_series where bqx_60 is not null"
    )
    bqx = bars.pivot(index="ts_utc", columns="pair", values="bqx_60")
    bqx = bqx.reindex(pd.date_range(bqx.index.min(), bqx.index.max(), freq="min"))
    full = pd.Series(True, index=bqx.index)
    ranks = pd.read_csv(Path(__file__).parents[2] / "seeds" / "sister_pairs.csv")
    for rank, sister in ranks.query("pair == @PAIR")[["sister_rank", "sister"]].itertuples(
        index=False
    ):
        for window in (60, 240):
            rolling = bqx[PAIR].rolling(window).corr(bqx[sister])
            column = f"sister_{rank:02d}_corr_{window}"
            np.testing.assert_allclose(
                table[column].to_numpy(float), rolling.reindex(table.index), atol=1e-9
            )
        full &= rolling.notna()
    assert list(table.index) == list(full[full].index)
    assert len(table) > 2000


@pytest.mark.parametrize("follower", sorted({f for _, f, _, _ in PLANTED_LEAD_LAGS}))
def test_lead_lag_slots_hold_the_leaders_values_at_their_lag(built, follower):
    _, conn = built
    features = table_of(conn, "cross_pair_lead_lag", follower)
    planted = sorted(
        [(effect, leader, lag) for leader, f, lag, effect in PLANTED_LEAD_LAGS if f == follower],
        reverse=True,
    )
    for slot, (_, leader, lag) in enumerate(planted, start=1):
        values = table_of(conn, "bqx_values", leader)
        regressions = table_of(conn, "reg_bqx", leader)
        earlier = features.index - pd.Timedelta(minutes=lag)
        np.testing.assert_array_equal(
            features[f"leader_{slot}_bqx_60_lagged"], values.loc[earlier, "bqx_60"]
        )
        np.testing.assert_array_equal(
            features[f"leader_{slot}_quad_term_w60_lagged"],
            regressions.loc[earlier, "w60_quadratic_term"],
        )
    for slot in range(len(planted) + 1, 5):
        assert (features.filter(like=f"leader_{slot}_") == 0).all().all()
    # a pair nobody leads has only empty slots
    assert (table_of(conn, "cross_pair_lead_lag", "CADCHF").drop(columns="pair") == 0).all().all()
