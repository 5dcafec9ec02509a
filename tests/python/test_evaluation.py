"""Walk-forward evaluation (`bqx evaluate`): folds, leakage, metrics, bootstrap, the run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from arch.bootstrap import CircularBlockBootstrap, IIDBootstrap
from scipy.stats import spearmanr
from sklearn.metrics import r2_score
from typer.testing import CliRunner

from bqx import db
from bqx.errors import BqxUserError
from bqx.metrics import (
    TRADING_HOURS_PER_YEAR,
    directional_accuracy,
    hit_rate,
    information_coefficient,
    max_drawdown,
    r2,
    sharpe,
    trade_pnl,
)
from models_ml.evaluation.bootstrap import block_bootstrap
from models_ml.evaluation.data import HeldOutRows, PairRows
from models_ml.evaluation.folds import MIN_EMBARGO_MINUTES, walk_forward_folds
from models_ml.evaluation.scoring import Collector
from models_ml.evaluation.store import write_reports, write_table
from models_ml.evaluation.trading_costs import load_spreads, spread_return
from models_ml.evaluation.walk_forward import EvaluationConfig, evaluate, score_fold

START = datetime(2024, 1, 1, tzinfo=UTC)
END = START + timedelta(days=30)
TEST_FROM = START + timedelta(days=18)


def test_folds_are_chronological_with_an_embargo_before_each_test_block():
    folds = walk_forward_folds(START, TEST_FROM, END, 4, 750)
    assert [f.number for f in folds] == [1, 2, 3, 4]
    assert folds[0].test_start == TEST_FROM and folds[-1].test_end == END
    for before, after in zip(folds, folds[1:], strict=False):
        assert before.test_end == after.test_start  # the blocks tile the test span
    minutes = np.arange(int(START.timestamp()), int(END.timestamp()), 60)
    for fold in folds:
        assert fold.train_start == START and fold.embargo >= timedelta(minutes=750)
        train, test = minutes[fold.train_mask(minutes)], minutes[fold.test_mask(minutes)]
        # the last training target (t + 60) ends at least 690 minutes before any test row
        assert test.min() - (train.max() + 3600) >= 690 * 60
    with pytest.raises(BqxUserError):
        walk_forward_folds(START, TEST_FROM, END, 3, MIN_EMBARGO_MINUTES - 1)
    with pytest.raises(BqxUserError):
        walk_forward_folds(START, START + timedelta(hours=2), END, 3, 750)


def _rows(ts: np.ndarray, rng: np.random.Generator, width: int = 12) -> PairRows:
    base = rng.normal(size=(len(ts), width)).astype(np.float32)
    target = base[:, 0] * 0.5 + rng.normal(scale=0.1, size=len(ts))
    return PairRows(ts, base, rng.normal(size=(len(ts), 4)).astype(np.float32), None, target)


def _test_rows(rows: PairRows) -> HeldOutRows:
    n = len(rows)
    nan = np.full(n, np.nan)
    return HeldOutRows(rows, np.full(n, 1.1), np.zeros(n), nan, nan)


def _fold_predictions(sample: PairRows, test: HeldOutRows, fold) -> dict:
    collector = Collector()
    config = EvaluationConfig(bootstrap_resamples=0)
    score_fold(collector, "EURUSD", fold, sample, test, np.array([0, 1]), 0, config)
    return {key: collector.scored(key).prediction for key in collector.chunks}


def test_scaler_and_ridge_never_see_rows_after_the_training_window():
    rng = np.random.default_rng(3)
    minutes = np.arange(int(START.timestamp()), int(END.timestamp()), 600)
    sample = _rows(minutes, rng)
    test = _test_rows(_rows(minutes, rng))
    fold = walk_forward_folds(START, TEST_FROM, END, 2, 750)[0]
    clean = _fold_predictions(sample, test, fold)
    later = sample.ts_epoch >= int(fold.train_end.timestamp())
    poisoned_base = sample.base.copy()
    poisoned_base[later] = 1e6
    poisoned_target = sample.target.copy()
    poisoned_target[later] = -1e6
    poisoned = replace(sample, base=poisoned_base, target=poisoned_target)
    after = _fold_predictions(poisoned, test, fold)
    assert set(clean) >= {("base", "ridge"), ("cross_pair", "ridge"), ("baseline", "ridge_bqx")}
    for key, prediction in clean.items():
        np.testing.assert_array_equal(prediction, after[key], err_msg=str(key))
    assert (
        np.corrcoef(clean[("base", "ridge")], test.rows.target[fold.test_mask(minutes)])[0, 1] > 0.9
    )  # the planted signal is learned


def test_forecast_metrics_match_independent_computations():
    rng = np.random.default_rng(5)
    y = rng.normal(size=400)
    pred = 0.6 * y + rng.normal(size=400)
    y[:10] = 0.0
    assert r2(y, pred) == pytest.approx(r2_score(y, pred))
    moved = y != 0
    expected = np.mean((pred[moved] > 0) == (y[moved] > 0))
    assert directional_accuracy(y, pred) == pytest.approx(expected)
    assert information_coefficient(y, pred) == pytest.approx(spearmanr(y, pred).statistic)
    assert directional_accuracy(y, np.zeros_like(y)) == 0.0  # a zero prediction is a miss
    assert np.isnan(information_coefficient(y, np.ones_like(y)))


def test_trading_metrics_on_a_hand_made_series():
    pnl = np.array([0.01, -0.02, 0.03, -0.01, 0.02])
    mean, sd = 0.006, np.sqrt(np.sum((pnl - 0.006) ** 2) / 4)
    assert sharpe(pnl) == pytest.approx(mean / sd * np.sqrt(TRADING_HOURS_PER_YEAR))
    assert hit_rate(pnl, np.ones(5, bool)) == pytest.approx(0.6)
    # equity 0, .01, -.01, .02, .01, .03: the worst fall is from .01 to -.01
    assert max_drawdown(pnl) == pytest.approx(0.02)
    got = trade_pnl(np.array([2.0, -1.0, 0.0]), np.array([0.001, 0.002, 0.5]), np.full(3, 1e-4))
    np.testing.assert_allclose(got, [0.001 - 1e-4, -0.002 - 1e-4, 0.0])
    cost = spread_return("USDJPY", 1.0, np.array([110.0]))
    assert cost[0] == pytest.approx(0.01 / 110.0)


def test_block_bootstrap_interval_contains_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(9)

    def interval(days: int):
        values = 0.1 + rng.normal(size=days * 60)
        blocks = np.repeat(np.arange(days), 60)
        return block_bootstrap(lambda rows: [values[rows].mean()], blocks, 300, seed=1)[0]

    small, large = interval(20), interval(320)
    for found in (small, large):
        assert found.low <= found.value <= found.high
    assert (large.high - large.low) < 0.5 * (small.high - small.low)


def test_day_block_bootstrap_matches_arch():
    """Same seed: the intervals are arch's percentile intervals of whole days drawn i.i.d.;
    and with equal days, as wide as arch's circular block bootstrap with day-long blocks."""
    rng = np.random.default_rng(5)
    days, minutes = 80, 60
    noise = rng.normal(size=days * minutes)
    values = np.empty_like(noise)
    values[0] = noise[0]
    for t in range(1, len(noise)):  # strong intraday dependence
        values[t] = 0.9 * values[t - 1] + noise[t]
    blocks = np.repeat(np.arange(days), minutes)
    ours = block_bootstrap(lambda rows: [values[rows].mean()], blocks, 500, seed=3)[0]

    day_means = values.reshape(days, minutes).mean(axis=1)  # equal days: mean of day means
    reference = IIDBootstrap(np.arange(days), seed=3).conf_int(
        lambda picked: day_means[picked].mean(), reps=500, method="percentile"
    )
    assert (ours.low, ours.high) == pytest.approx((reference[0, 0], reference[1, 0]), rel=1e-9)

    circular = CircularBlockBootstrap(minutes, values, seed=3).conf_int(
        np.mean, reps=2000, method="percentile"
    )
    width = circular[1, 0] - circular[0, 0]
    assert 0.75 * width < ours.high - ours.low < 1.25 * width


def test_spread_config_overrides_defaults_and_rejects_bad_files(tmp_path):
    path = tmp_path / "spreads.csv"
    path.write_text("pair,spread_pips\neurusd,0.3\n")
    spreads = load_spreads(path)
    assert spreads["EURUSD"] == 0.3 and spreads["GBPNZD"] > spreads["GBPUSD"]
    path.write_text("pair,cost\nEURUSD,1\n")
    with pytest.raises(BqxUserError):
        load_spreads(path)
    runner = CliRunner()
    from bqx.cli import app

    result = runner.invoke(app, ["evaluate", "--spread-config", str(tmp_path / "none.csv")])
    assert result.exit_code == 1 and "not found" in result.output


def test_evaluate_on_the_generated_market_scores_every_stage_it_can(built, make_settings, tmp_path):
    settings, conn = built
    config = EvaluationConfig(
        pairs=("EURUSD", "GBPUSD", "EURJPY"),
        folds=2,
        train_rows_per_pair=3000,
        bootstrap_resamples=20,
    )
    result = evaluate(conn, config)
    with conn.cursor() as cur:
        cur.execute("select start_utc from bqx.ml_periods where period = 'validation'")
        validation_start = cur.fetchone()[0]
    assert result.folds[0].test_start == validation_start
    scores = {(r.stage, r.model, r.pair, r.fold, r.metric): r for r in result.rows}
    for stage, model in [
        ("baseline", "zero"),
        ("baseline", "persistence"),
        ("base", "ridge"),
        ("cross_pair", "ridge"),
    ]:
        pooled = scores[(stage, model, "ALL", "all", "r2")]
        assert pooled.value is not None
    zero = scores[("baseline", "zero", "ALL", "all", "r2")]
    assert zero.value <= 0.0
    persistence = scores[("baseline", "persistence", "ALL", "all", "r2")]
    assert persistence.ci_low <= persistence.value <= persistence.ci_high
    # every model is scored on the same test minutes, and the pairs add up to the pool
    n_rows = {k[:2]: r.value for k, r in scores.items() if k[2:] == ("ALL", "all", "n_rows")}
    assert len(set(n_rows.values())) == 1 and n_rows[("base", "ridge")] > 1000
    per_pair = sum(scores[("base", "ridge", p, "all", "n_rows")].value for p in config.pairs)
    assert per_pair == n_rows[("base", "ridge")]
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from bqx.ml_targets where pair = any(%s) and ts_utc >= %s "
            "and ts_utc < %s",
            (list(config.pairs), result.folds[0].test_start, result.folds[-1].test_end),
        )
        assert per_pair <= cur.fetchone()[0]
        # the shared build has embeddings only when the autoencoder tests ran before this one
        cur.execute("select to_regclass('bqx.autoencoder_embeddings') is not null")
        has_embeddings = cur.fetchone()[0]
    if has_embeddings:
        assert scores[("embeddings", "ridge", "ALL", "all", "r2")].value is not None
    else:
        assert "embeddings" in result.notes
    assert set(result.notes) >= {"multitask", "online"}
    assert result.notes["online"].startswith("not available")

    store = make_settings("evaluation")
    other = db.connect(store)
    try:
        assert write_table(other, result) == len(result.rows)
        with other.cursor() as cur:
            cur.execute("select count(distinct run_id), count(*) from bqx.evaluation_results")
            assert cur.fetchone() == (1, len(result.rows))
    finally:
        other.close()
    paths = write_reports(result, tmp_path)
    assert "baseline/persistence" in paths["markdown"].read_text()


def test_ridge_matches_scikit_learn_on_standardized_inputs():
    from sklearn.linear_model import Ridge

    from models_ml.evaluation.ridge_forecaster import RidgeForecaster

    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 6)) * [1, 2, 3, 4, 5, 6] + 3
    y = x @ [1.0, 0, 2, 0, 1, -1] + rng.normal(size=400)
    ours = RidgeForecaster(alphas=(10.0,)).fit(x, y)
    reference = Ridge(alpha=10.0).fit((x - x.mean(0)) / x.std(0), y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-10)
    assert ours.intercept_ == pytest.approx(reference.intercept_)
    chosen = RidgeForecaster().fit(x, y)
    assert chosen.alpha_ in chosen.alphas
