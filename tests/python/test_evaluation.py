"""Walk-forward evaluation (`bqx evaluate`): folds, leakage, metrics, bootstrap, the run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from arch.bootstrap import CircularBlockBootstrap, IIDBootstrap, StationaryBootstrap
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
from models_ml.evaluation.bootstrap import block_bootstrap, paired_mean_interval
from models_ml.evaluation.data import HeldOutRows, PairRows, StoredMultitask
from models_ml.evaluation.folds import MIN_EMBARGO_MINUTES, walk_forward_folds
from models_ml.evaluation.scoring import Collector, summarize
from models_ml.evaluation.store import write_reports, write_table
from models_ml.evaluation.trading_costs import load_spreads, spread_return
from models_ml.evaluation.walk_forward import (
    TARGETS,
    EvaluationConfig,
    Layout,
    evaluate,
    score_fold,
)

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


CLASSES = ["high_vol", "strong_bull", "bull", "neutral", "bear", "strong_bear"]


def _rows(ts: np.ndarray, rng: np.random.Generator, width: int = 12) -> PairRows:
    base = rng.normal(size=(len(ts), width)).astype(np.float32)
    target = base[:, 0] * 0.5 + rng.normal(scale=0.1, size=len(ts))
    vol = 0.1 + 0.05 * np.abs(base[:, 2]) + rng.normal(scale=0.005, size=len(ts))
    regime = np.where(base[:, 3] > 0, 3.0, 2.0)
    return PairRows(
        ts,
        base,
        rng.normal(size=(len(ts), 4)).astype(np.float32),
        None,
        target,
        vol=vol,
        regime=regime,
        vol_now=vol + rng.normal(scale=0.005, size=len(ts)),
    )


def _test_rows(rows: PairRows, multitask: StoredMultitask | None = None) -> HeldOutRows:
    n = len(rows)
    nan = np.full(n, np.nan)
    if multitask is None:
        multitask = StoredMultitask(nan, nan, np.full((n, len(CLASSES)), np.nan))
    return HeldOutRows(rows, np.full(n, 1.1), np.zeros(n), multitask, nan)


def _layout(test_start: datetime = START) -> Layout:
    return Layout(np.array([0, 1]), 0, (2, 4, 5), CLASSES, int(test_start.timestamp()))


def _fold_predictions(sample: PairRows, test: HeldOutRows, fold) -> dict:
    collector = Collector()
    config = EvaluationConfig(bootstrap_resamples=0)
    score_fold(collector, "EURUSD", fold, sample, test, _layout(), config)
    (block,) = collector.blocks
    return {
        (target, *key): values
        for target, by_model in block.predictions.items()
        for key, values in by_model.items()
        if np.isfinite(values).any()
    }


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
    assert set(clean) >= {
        ("bqx_t60", "base", "ridge"),
        ("bqx_t60", "cross_pair", "ridge"),
        ("bqx_t60", "baseline", "ridge_bqx"),
        ("vol_t60", "baseline", "har"),
        ("vol_t60", "base", "ridge"),
        ("regime_t60", "base", "logit"),
        ("regime_t60", "baseline", "prior"),
    }
    for key, prediction in clean.items():
        np.testing.assert_array_equal(prediction, after[key], err_msg=str(key))
    held_out = fold.test_mask(minutes)
    # the planted signals are learned
    assert np.corrcoef(clean[("bqx_t60", "base", "ridge")], test.rows.target[held_out])[0, 1] > 0.9
    assert np.corrcoef(clean[("vol_t60", "baseline", "har")], test.rows.vol[held_out])[0, 1] > 0.9
    regime_proba = clean[("regime_t60", "base", "logit")]
    assert np.mean(regime_proba.argmax(axis=1) == test.rows.regime[held_out]) > 0.9


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
    scores = {
        (r.stage, r.model, r.pair, r.fold, r.metric): r
        for r in result.rows
        if r.target == "bqx_t60"
    }
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
    # every model of a target is scored on the same test minutes, and the pairs add up
    for target in ("bqx_t60", "vol_t60", "regime_t60"):
        n_rows = {
            (r.stage, r.model): r.value
            for r in result.rows
            if (r.target, r.pair, r.fold, r.metric) == (target, "ALL", "all", "n_rows")
        }
        assert len(n_rows) >= 3 and len(set(n_rows.values())) == 1, (target, n_rows)
    n_rows = {k[:2]: r.value for k, r in scores.items() if k[2:] == ("ALL", "all", "n_rows")}
    assert n_rows[("base", "ridge")] > 1000
    per_pair = sum(scores[("base", "ridge", p, "all", "n_rows")].value for p in config.pairs)
    assert per_pair == n_rows[("base", "ridge")]
    # paired differences against zero and the stage before, with intervals
    cross = scores[("cross_pair", "ridge", "ALL", "all", "dloss_vs_previous")]
    assert cross.ci_low <= cross.value <= cross.ci_high
    assert ("baseline", "zero", "ALL", "all", "dloss_vs_reference") not in scores
    vol = {
        (r.stage, r.model, r.metric): r
        for r in result.rows
        if (r.target, r.pair, r.fold) == ("vol_t60", "ALL", "all")
    }
    assert vol[("base", "ridge", "dloss_vs_benchmark")].value is not None  # against HAR
    regime = {
        (r.stage, r.model, r.metric): r
        for r in result.rows
        if (r.target, r.pair, r.fold) == ("regime_t60", "ALL", "all")
    }
    assert regime[("baseline", "prior", "log_loss")].value > 0
    assert regime[("base", "logit", "dloss_vs_reference")].ci_low is not None
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


def _blocks_with_gaps(rng: np.random.Generator) -> Collector:
    """Two pairs × two folds; online covers part of the minutes, the net other parts."""
    collector = Collector()
    folds = walk_forward_folds(START, TEST_FROM, END, 2, 750)
    minutes = np.arange(int(START.timestamp()), int(END.timestamp()), 600)
    sample = _rows(minutes, rng)
    for pair in ("EURUSD", "GBPUSD"):
        rows = _rows(minutes, rng)
        n = len(rows)
        net_bqx = rows.target + rng.normal(scale=0.3, size=n)
        net_bqx[rng.random(n) < 0.2] = np.nan
        proba = np.full((n, len(CLASSES)), 1 / len(CLASSES))
        proba[rng.random(n) < 0.1] = np.nan
        stored = StoredMultitask(net_bqx, rows.vol * 1.1, proba)
        test = _test_rows(rows, stored)
        online = rows.target + rng.normal(size=n)
        online[rng.random(n) < 0.3] = np.nan
        test = replace(test, online=online)
        for fold in folds:
            score_fold(collector, pair, fold, sample, test, _layout(), EvaluationConfig())
    return collector


def test_every_stage_of_a_target_is_scored_on_identical_rows():
    collector = _blocks_with_gaps(np.random.default_rng(4))
    for spec in TARGETS:
        scored = collector.common(spec)
        assert ("multitask", "multitask_net") in scored, spec.name
        expected = 0  # independent count: minutes where the outcome and every model are finite
        for block in collector.blocks:
            keep = np.isfinite(block.truth[spec.name])
            for values in block.predictions[spec.name].values():
                finite = np.isfinite(values)
                keep &= finite.all(axis=1) if finite.ndim == 2 else finite
            expected += int(keep.sum())
        reference = scored[spec.reference]
        assert len(reference.ts_epoch) == expected > 100, spec.name
        for key, s in scored.items():
            np.testing.assert_array_equal(s.ts_epoch, reference.ts_epoch, err_msg=str(key))
            np.testing.assert_array_equal(s.pair, reference.pair, err_msg=str(key))
    rows = summarize(collector, TARGETS, 0, 7)
    n_rows = {
        (r.target, r.stage, r.model): r.value
        for r in rows
        if (r.pair, r.fold, r.metric) == ("ALL", "all", "n_rows")
    }
    for spec in TARGETS:
        counts = {v for (t, *_), v in n_rows.items() if t == spec.name}
        assert len(counts) == 1, (spec.name, counts)
    # the online ensemble (a bqx_t60 stage) narrows bqx_t60's rows, not vol_t60's
    assert n_rows[("bqx_t60", "baseline", "zero")] < n_rows[("vol_t60", "baseline", "har")]


def test_once_trained_stages_are_not_scored_on_the_validation_period_they_stopped_on():
    """Fold 1 tests inside the validation period: a multi-task net that early-stopped there
    (here: one that saw its outcomes and predicts them exactly) must not be scored on it.
    The old walk-forward scored it in every fold."""
    rng = np.random.default_rng(8)
    minutes = np.arange(int(START.timestamp()), int(END.timestamp()), 600)
    rows = _rows(minutes, rng)
    proba = np.eye(len(CLASSES))[rows.regime.astype(int)]
    test = _test_rows(rows, StoredMultitask(rows.target.copy(), rows.vol.copy(), proba))
    folds = walk_forward_folds(START, TEST_FROM, END, 3, 750)
    test_start = folds[1].test_start + timedelta(days=1)  # inside fold 2
    collector = Collector()
    for fold in folds:
        score_fold(collector, "EURUSD", fold, rows, test, _layout(test_start), EvaluationConfig())
    for spec in TARGETS:
        scored = collector.common(spec)
        net = scored[("multitask", "multitask_net")]
        assert net.ts_epoch.min() >= int(test_start.timestamp()), spec.name
        assert 1 not in set(net.fold.tolist()), spec.name
        # every stage shares those rows, so the refitted stages are not scored on fold 1 either
        for key, s in scored.items():
            np.testing.assert_array_equal(s.ts_epoch, net.ts_epoch, err_msg=str(key))
    rows_out = summarize(collector, TARGETS, 0, 7)
    assert not any(r.fold == "1" for r in rows_out)


def test_paired_interval_matches_arch_and_a_numpy_block_bootstrap():
    rng = np.random.default_rng(11)
    days, per_day = 60, 200
    n = days * per_day
    shock = np.empty(n)
    shock[0] = rng.normal()
    for t in range(1, n):  # dependent losses, as for overlapping 60-minute horizons
        shock[t] = 0.95 * shock[t - 1] + rng.normal()
    loss_b = 1.0 + np.abs(shock)
    loss_a = loss_b - 0.02 + 0.1 * rng.normal(size=n)  # A is better by 0.02 on average
    difference = loss_a - loss_b
    ts = START.timestamp() + 60 * np.arange(n)
    ours = paired_mean_interval(difference, ts, block_minutes=per_day, n_resamples=500, seed=3)
    # one pair: the statistic is the plain mean, so arch used directly gives the same numbers
    reference = StationaryBootstrap(per_day, difference, seed=3).conf_int(
        np.mean, reps=500, method="percentile"
    )
    assert ours.value == pytest.approx(difference.mean())
    assert (ours.low, ours.high) == pytest.approx((reference[0, 0], reference[1, 0]), rel=1e-9)
    assert ours.high < 0  # paired: the 0.02 edge is resolved

    # numpy moving-block bootstrap of the same mean (independent code): similar width
    starts = np.random.default_rng(5).integers(0, n - per_day + 1, size=(2000, n // per_day))
    means = np.array([difference[(s[:, None] + np.arange(per_day)).ravel()].mean() for s in starts])
    low, high = np.percentile(means, [2.5, 97.5])
    assert 0.6 < (ours.high - ours.low) / (high - low) < 1.6

    # unpaired, the two models' own intervals overlap: pairing is what resolves the edge
    own_a = StationaryBootstrap(per_day, loss_a, seed=3).conf_int(np.mean, reps=500)
    own_b = StationaryBootstrap(per_day, loss_b, seed=3).conf_int(np.mean, reps=500)
    assert own_a[1, 0] > own_b[0, 0]

    # two pairs at the same minutes: the pooled mean of all rows, minutes resampled together
    both = paired_mean_interval(
        np.r_[difference, difference + 0.01], np.r_[ts, ts], per_day, 200, seed=3
    )
    assert both.value == pytest.approx(np.mean(np.r_[difference, difference + 0.01]))
    assert both.low < both.value < both.high


def test_ml_inputs_see_price_levels_only_relative_to_the_current_price(built):
    """rate_index and the REG-rate predictions are left out, the REG-rate constant terms come
    as distances from the rate index; checked against the feature tables, read with SQL."""
    from bqx.feature_reader import input_columns, read_input

    _, conn = built
    columns = input_columns(conn)
    names = [c.name for c in columns]
    assert "rate_index" not in names and "bqx_60" in names
    assert not [n for n in names if n.startswith("reg_rate_") and n.endswith("_prediction")]
    assert not [n for n in names if n.endswith("_constant_term") and n.startswith("reg_rate_")]
    assert "reg_rate_w60_constant_term_vs_rate_index" in names
    assert "reg_bqx_w60_constant_term" in names  # bqx is already relative: unchanged
    start = datetime(2024, 1, 30, 10, tzinfo=UTC)
    block = read_input(conn, columns, "EURUSD", start, start + timedelta(hours=6))
    assert len(block.ts_epoch) > 100
    with conn.cursor() as cur:
        cur.execute(
            "select extract(epoch from r.ts_utc)::bigint, g.w60_constant_term - r.rate_index "
            "from bqx.rate_index r join bqx.reg_rate g using (pair, ts_utc) "
            "where pair = 'EURUSD' and r.ts_utc = any(%s) order by r.ts_utc",
            ([datetime.fromtimestamp(int(t), UTC) for t in block.ts_epoch],),
        )
        expected = np.array(cur.fetchall(), dtype=np.float64)
    np.testing.assert_array_equal(expected[:, 0], block.ts_epoch)
    got = block.features[:, names.index("reg_rate_w60_constant_term_vs_rate_index")]
    np.testing.assert_allclose(got, expected[:, 1], rtol=1e-6, atol=1e-6)
