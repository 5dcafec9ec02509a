"""`bqx granger`: planted lead-lag links found at their lag, few false links, train rows only."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import grangercausalitytests
from typer.testing import CliRunner

from bqx import db
from bqx.cli import app
from bqx.dbt_runner import run_dbt
from bqx.errors import BqxUserError
from bqx.ingest.loader import ingest_files
from bqx.periods import load_periods
from bqx.synth import SynthConfig, write_market
from models_ml.granger.discovery import (
    GrangerConfig,
    discover,
    f_test_p_values,
    ordered_sister_pairs,
    write_results,
)
from models_ml.granger.stats import granger_f_tests, lag_design, standardise

# Planted links among them (GBPUSD→EURUSD, AUDUSD→NZDUSD, and the EURGBP / AUDNZD crosses)
# and pairs with no path from any link (USDCHF, USDCAD).
PAIRS = ("EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCHF", "USDCAD", "EURGBP", "AUDNZD")
CONFIG = GrangerConfig(pairs=PAIRS, workers=1)


@pytest.fixture(scope="module")
def market(make_settings, tmp_path_factory):
    """Two generated weeks of 8 pairs, ingested and built up to bqx_values and ml_periods."""
    settings = make_settings("granger")
    data = tmp_path_factory.mktemp("granger_market")
    truth = write_market(SynthConfig(start=date(2024, 1, 7), days=14, seed=5, pairs=PAIRS), data)
    conn = db.connect(settings)
    ingest_files(conn, [data])
    selection = ["--select", "+bqx_values ml_periods", "--indirect-selection", "cautious"]
    assert run_dbt(settings, ["build", *selection]) == 0, "dbt build of the base layer failed"
    yield settings, conn, truth
    conn.close()


@pytest.fixture(scope="module")
def tested(market):
    """One Granger run written to the database, plus the train period it used."""
    _, conn, truth = market
    result = discover(conn, CONFIG)
    write_results(conn, result, CONFIG.pairs)
    return conn, truth, result, load_periods(conn).train


def query(conn, sql: str, params=None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        columns = [column.name for column in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def has_causal_path(leader: str, follower: str, links: list[dict]) -> bool:
    """Does the leader pair's past carry news of the follower pair's future, by construction?

    A currency link L → F puts L's innovation of `lag` minutes ago into F's. A pair holding F
    is then led by any pair holding L (GBPUSD → EURUSD, the pair links of ground_truth.json)
    and, when it holds L as well (EURGBP, AUDNZD), by every sister: its own past mixes the
    two currencies and a sister's past helps tell them apart (EURUSD → EURGBP).
    """
    follows = {follower[:3], follower[3:]}
    leads = {leader[:3], leader[3:]}
    return any(
        link["follower"] in follows and (link["leader"] in leads or link["leader"] in follows)
        for link in links
    )


def causal_mask(best: pd.DataFrame, links: list[dict]) -> np.ndarray:
    """Which rows (ordered pairs) of a best-lag frame have a causal path."""
    pairs = zip(best["leader"], best["follower"], strict=True)
    return np.array([has_causal_path(leader, follower, links) for leader, follower in pairs])


def planted_lag(leader: str, follower: str, links: list[dict]) -> int:
    (lag,) = {
        link["lag_minutes"]
        for link in links
        if link["follower"] in (follower[:3], follower[3:])
        and link["leader"] in {leader[:3], leader[3:], follower[:3], follower[3:]}
    }
    return lag


# ---------------------------------------------------------------------------- on the market


def test_planted_pair_links_are_found_at_their_planted_lag(tested):
    conn, truth, _, _ = tested
    links = query(conn, "select * from bqx.lead_lag_relationships").set_index(
        ["leader", "follower"]
    )
    planted = [
        link for link in truth["pair_links"] if {link["leader"], link["follower"]} <= set(PAIRS)
    ]
    assert {(link["leader"], link["follower"]) for link in planted} == {
        ("GBPUSD", "EURUSD"),
        ("AUDUSD", "NZDUSD"),
    }
    for link in planted:
        row = links.loc[(link["leader"], link["follower"])]
        assert row["lag_minutes"] == link["lag_minutes"], link
        assert row["p_adjusted"] < 1e-6, link


def test_links_through_the_crosses_are_found_at_their_planted_lag(tested):
    _, truth, result, _ = tested
    found = result.relationships.set_index(["leader", "follower"])["lag_minutes"]
    causal = [
        (leader, follower)
        for leader, follower in ordered_sister_pairs(PAIRS)
        if has_causal_path(leader, follower, truth["links"])
    ]
    assert len(causal) == 8
    for leader, follower in causal:
        assert (leader, follower) in found.index, (leader, follower)
        assert found[(leader, follower)] == planted_lag(leader, follower, truth["links"])


def test_sister_pairs_without_a_causal_path_are_rarely_significant(tested):
    _, truth, result, _ = tested
    without_path = result.best[~causal_mask(result.best, truth["links"])]
    assert len(without_path) == 30
    assert without_path["is_significant"].mean() <= 0.10, without_path[
        without_path["is_significant"]
    ]


def test_without_the_volatility_scale_most_unrelated_pairs_look_linked(tested):
    """Why changes are scaled: the plain F test is far too liberal under shared volatility."""
    conn, truth, _, _ = tested
    best = discover(conn, replace(CONFIG, vol_window=0)).best
    conn.rollback()
    assert best[~causal_mask(best, truth["links"])]["is_significant"].mean() > 0.5


def test_every_relationship_is_significant_at_its_best_lag(tested):
    conn, _, _, _ = tested
    links = query(conn, "select * from bqx.lead_lag_relationships")
    assert len(links) > 0 and (links["p_adjusted"] < 0.05).all()
    assert not links.duplicated(["leader", "follower"]).any()
    tests = query(conn, "select * from bqx.granger_tests where p_adjusted < 0.05")
    strongest = tests.sort_values("f_stat").groupby(["leader", "follower"]).tail(1)
    expected = strongest.set_index(["leader", "follower"])[["lag_minutes", "p_adjusted"]]
    got = links.set_index(["leader", "follower"])[["lag_minutes", "p_adjusted"]]
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index())


def test_adjusted_p_values_are_benjamini_hochberg_over_every_test(tested):
    conn, _, _, _ = tested
    tests = query(conn, "select p_value, p_adjusted from bqx.granger_tests")
    assert len(tests) == len(ordered_sister_pairs(PAIRS)) * CONFIG.max_lag
    assert (tests["p_adjusted"] >= tests["p_value"]).all()
    p = tests["p_value"].to_numpy()
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    expected = np.empty_like(p)
    expected[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    np.testing.assert_allclose(tests["p_adjusted"], expected, rtol=1e-12)


def contiguous_runs(conn, pair: str, train) -> dict[int, int]:
    """Minute (since the epoch) → how many consecutive minutes with a bqx_60 row end there."""
    minutes = query(
        conn,
        "select (extract(epoch from ts_utc) / 60)::bigint as minute from bqx.bqx_values "
        "where pair = %s and ts_utc >= %s and ts_utc < %s order by ts_utc",
        (pair, train.start_utc, train.end_utc),
    )["minute"].to_numpy()
    starts = np.r_[True, np.diff(minutes) != 1]
    position = np.arange(len(minutes))
    run = position - np.maximum.accumulate(np.where(starts, position, 0)) + 1
    return dict(zip(minutes.tolist(), run.tolist(), strict=True))


def test_rows_record_the_train_period_and_count_only_its_contiguous_rows(tested):
    conn, _, _, train = tested
    for table in ("granger_tests", "lead_lag_relationships"):
        periods = query(conn, f"select distinct train_start, train_end from bqx.{table}")
        assert periods.values.tolist() == [[train.start_utc, train.end_utc]]
    n_obs = query(conn, "select distinct leader, follower, n_obs from bqx.granger_tests")
    assert not n_obs.duplicated(["leader", "follower"]).any(), "lags of a pair share their rows"
    # A usable minute t needs bqx_60 rows at every minute its change, the change's volatility
    # scale and the lags reach back to: the follower at t − max_lag − vol_window − 1 … t, the
    # leader from the same minute to t − 1, all inside the train period.
    reach = CONFIG.max_lag + CONFIG.vol_window + 1
    runs = {pair: contiguous_runs(conn, pair, train) for pair in PAIRS}
    for row in n_obs.itertuples(index=False):
        leader = runs[row.leader]
        usable = sum(
            1
            for minute, run in runs[row.follower].items()
            if run >= reach + 1 and leader.get(minute - 1, 0) >= reach
        )
        assert row.n_obs == min(usable, CONFIG.max_rows) > 1000, row


def test_rows_after_the_train_period_change_nothing(tested):
    conn, _, result, train = tested
    with conn.cursor() as cur:  # rolled back below
        cur.execute(
            "update bqx.bqx_values set bqx_60 = -3 * bqx_60 + random() where ts_utc >= %s",
            (train.end_utc,),
        )
        assert cur.rowcount > 1000
    try:
        again = discover(conn, CONFIG)
    finally:
        conn.rollback()
    pd.testing.assert_frame_equal(again.tests, result.tests)


def test_rerunning_replaces_rows_instead_of_adding_them(tested):
    conn, _, result, _ = tested
    counts = (
        "select (select count(*) from bqx.granger_tests), "
        "(select count(*) from bqx.lead_lag_relationships)"
    )
    before = query(conn, counts).values.tolist()
    subset = ("EURUSD", "GBPUSD", "EURGBP")
    partial = discover(conn, replace(CONFIG, pairs=subset))
    write_results(conn, partial, subset)
    assert query(conn, counts).values.tolist() == before
    stamps = query(
        conn, "select leader, follower, max(tested_at) as at from bqx.granger_tests group by 1, 2"
    )
    inside = stamps["leader"].isin(subset) & stamps["follower"].isin(subset)
    assert (stamps.loc[inside, "at"] == partial.tested_at).all() and inside.sum() == 6
    assert (stamps.loc[~inside, "at"] == result.tested_at).all()
    write_results(conn, result, PAIRS)
    assert query(conn, counts).values.tolist() == before


def test_a_pair_without_training_rows_is_a_user_error(tested):
    conn, _, _, _ = tested
    with pytest.raises(BqxUserError, match="no rows of USDJPY in the train period"):
        discover(conn, replace(CONFIG, pairs=("EURUSD", "USDJPY")))
    conn.rollback()


def test_cli_rejects_a_bad_pair_with_one_line(market, monkeypatch):
    settings, _, _ = market
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, ["granger", "--pairs", "EURUSD,EURXYZ"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if "unknown pair 'EURXYZ'" in line
    ]


def test_cli_prints_the_links_and_writes_the_reports(market, tested, monkeypatch):
    settings, _, _ = market
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, ["granger", "--pairs", ",".join(PAIRS), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "lead-lag relationships" in result.stdout
    assert "8 of 38 ordered sister pairs significant" in result.stdout
    assert "│ GBPUSD │ EURUSD   │         5 │" in result.stdout
    heatmap = settings.reports_dir / "granger_heatmap.png"
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and heatmap.stat().st_size > 10_000
    known = (settings.reports_dir / "granger_known_links.md").read_text()
    assert "| GBPUSD | EURUSD | 3-7 min | yes | 5 min |" in known
    assert "| AUDUSD | NZDUSD | 5-10 min | yes | 7 min |" in known
    assert known.count("not tested (pair not in scope)") == 6  # USDJPY → the JPY crosses


# ---------------------------------------------------------------------------- the statistics


def planted_series(n: int, lag: int, beta: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Leader: white noise; follower: own noise plus beta × the leader `lag` steps earlier."""
    rng = np.random.default_rng(seed)
    leader = rng.standard_normal(n)
    follower = rng.standard_normal(n)
    follower[lag:] += beta * leader[:-lag]
    return leader, follower


def test_f_statistic_and_effect_size_match_a_numpy_least_squares_fit():
    max_lag = 6
    leader, follower = planted_series(3000, lag=3, beta=0.3, seed=1)
    tests = granger_f_tests(lag_design(follower, leader, max_lag, 10**6), max_lag)
    t = np.arange(max_lag, len(follower))  # rows whose every lag exists
    y = follower[t]
    for test in tests:
        lag = test.lag_minutes
        own = np.column_stack([np.ones(len(t))] + [follower[t - k] for k in range(1, lag + 1)])
        both = np.column_stack([own] + [leader[t - k] for k in range(1, lag + 1)])
        ssr_r = np.sum((y - own @ np.linalg.lstsq(own, y, rcond=None)[0]) ** 2)
        ssr_u = np.sum((y - both @ np.linalg.lstsq(both, y, rcond=None)[0]) ** 2)
        df_resid = len(y) - both.shape[1]
        f_stat = (ssr_r - ssr_u) / lag / (ssr_u / df_resid)
        assert (test.n_obs, test.df_resid) == (len(y), df_resid)
        assert test.f_stat == pytest.approx(f_stat, rel=1e-8)
        assert test.effect_size == pytest.approx((ssr_r - ssr_u) / ssr_r, rel=1e-8)
    assert max(tests, key=lambda test: test.f_stat).lag_minutes == 3
    p_values = [f_test_p_values(t.f_stat, t.lag_minutes, t.df_resid) for t in tests]
    assert p_values[1] > 0.01 and p_values[2] < 1e-20


def test_f_test_is_statsmodels_ssr_ftest_on_a_contiguous_series():
    max_lag = 4
    leader, follower = planted_series(1500, lag=2, beta=0.2, seed=2)
    tests = granger_f_tests(lag_design(follower, leader, max_lag, 10**6), max_lag)
    data = np.column_stack([follower, leader])
    for test in tests:
        lag = test.lag_minutes
        # statsmodels drops the first `lag` rows; start later so both use the same rows
        (outcome, (restricted, unrestricted, _)) = grangercausalitytests(
            data[max_lag - lag :], [lag]
        )[lag]
        f_stat, p_value, df_denom, df_num = outcome["ssr_ftest"]
        assert (df_num, df_denom) == (lag, test.df_resid)
        assert test.f_stat == pytest.approx(f_stat, rel=1e-8)
        assert f_test_p_values(test.f_stat, lag, test.df_resid) == pytest.approx(p_value, rel=1e-6)
        effect = (restricted.ssr - unrestricted.ssr) / restricted.ssr
        assert test.effect_size == pytest.approx(effect, rel=1e-8)


def test_lags_are_minutes_and_never_reach_across_a_gap():
    follower = np.arange(100, dtype=float)  # value = minute, so lags can be read off
    leader = 1000 + np.arange(100, dtype=float)
    follower[40] = np.nan  # a missing follower change
    leader[70] = np.nan  # a missing leader change
    design = lag_design(follower, leader, 3, 10**6)
    now = design[:, -1]
    allowed = [t for t in range(3, 100) if not (40 <= t <= 43 or 71 <= t <= 73)]
    assert now.tolist() == allowed  # leader at t itself (70) is not needed, its lags are
    for k in range(1, 4):
        np.testing.assert_array_equal(design[:, k - 1], now - k)  # follower lag k
        np.testing.assert_array_equal(design[:, 3 + k - 1], 1000 + now - k)  # leader lag k
    np.testing.assert_array_equal(lag_design(follower, leader, 3, 5), design[-5:])


def test_volatility_scale_uses_only_earlier_minutes():
    rng = np.random.default_rng(3)
    changes = rng.standard_normal(200) * np.repeat([1.0, 5.0], 100)
    changes[150] = np.nan
    scaled = standardise(changes, 10)
    for t in range(200):
        window = changes[t - 10 : t] if t >= 10 else np.array([np.nan])
        expected = changes[t] / np.sqrt(np.mean(window**2))
        np.testing.assert_allclose(scaled[t], expected, rtol=1e-10)  # NaN where expected is
    later = changes.copy()
    later[120:] = 99.0
    np.testing.assert_array_equal(standardise(later, 10)[:120], scaled[:120])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pairs": ("EURUSD", "EURXYZ")}, "unknown pair"),
        ({"pairs": ("EURUSD", "AUDNZD")}, "share a currency"),
        ({"max_lag": 0}, "--max-lag"),
        ({"alpha": 1.5}, "lead_lag_alpha"),
        ({"max_rows": 100}, "--max-rows"),
        ({"workers": 0}, "--workers"),
        ({"vol_window": 2}, "--vol-window"),
    ],
)
def test_config_rejects_what_cannot_be_tested(changes, message):
    with pytest.raises(BqxUserError, match=message):
        replace(CONFIG, **changes)
