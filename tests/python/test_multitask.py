"""Stage 2.18: per-pair multi-task nets, the ablation, leakage and the predictions table.

Trains a tiny autoencoder and tiny nets (seconds) for two pairs of the session's generated
market (`built`) into a BQX_HOME of their own, and predicts into that database.
"""

from __future__ import annotations

import csv
import json
import math
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from psycopg2 import sql
from sklearn.metrics import r2_score
from typer.testing import CliRunner

from bqx import feature_reader
from bqx.cli import app
from bqx.config import Settings
from bqx.feature_reader import input_columns, next_month
from bqx.metrics import directional_accuracy, r2
from bqx.periods import load_periods
from models_ml.autoencoder.embeddings import EmbedConfig, embed
from models_ml.autoencoder.training import AutoencoderConfig, train_autoencoder
from models_ml.common.preprocessing import fit_scaler, standardize
from models_ml.multitask.artifacts import MultitaskArtifacts, load_pair
from models_ml.multitask.data import (
    input_names,
    read_rows,
    regime_classes,
    sample_rows,
)
from models_ml.multitask.net import TargetScaler, predict
from models_ml.multitask.predictions import PredictConfig, predict_multitask
from models_ml.multitask.report import MODELS
from models_ml.multitask.training import MultitaskConfig, train_multitask

from .conftest import CUTOFF

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

PAIRS_UNDER_TEST = ("EURUSD", "GBPUSD")
TINY_AUTOENCODER = AutoencoderConfig(
    sample_rows=1_400, validation_rows=400, epochs=2, batch_size=128, pairs=PAIRS_UNDER_TEST
)
TINY = MultitaskConfig(
    pairs=PAIRS_UNDER_TEST,
    skip_missing=False,
    sample_rows=1_500,
    validation_rows=400,
    test_rows=600,
    epochs=3,
    batch_size=128,
)
FEATURE_VIEWS = ("ml_feature_matrix", "ml_cross_pair_features")


@pytest.fixture(scope="module")
def trained(built, split, tmp_path_factory):
    """(settings, connection, MultitaskResult): autoencoder → embeddings → multi-task nets."""
    built_settings, conn = built
    settings = Settings(
        home=tmp_path_factory.mktemp("multitask_home"), database_url=built_settings.database_url
    )
    train_autoencoder(conn, settings, TINY_AUTOENCODER)
    embed(conn, settings, EmbedConfig(pairs=PAIRS_UNDER_TEST))
    return settings, conn, train_multitask(conn, settings, TINY)


def test_regime_head_has_one_unit_per_label_of_the_seed(trained):
    settings, conn, result = trained
    classes = regime_classes(conn)
    assert classes == ["high_vol", "strong_bull", "bull", "strong_bear", "bear", "neutral"]
    assert result.classes == classes
    width = len(input_names(input_columns(conn)))
    for pair in PAIRS_UNDER_TEST:
        model, _, _ = load_pair(MultitaskArtifacts.of(settings), pair)
        x = np.random.default_rng(1).normal(size=(23, width)).astype(np.float32)
        out = model.predict(x, verbose=0)
        assert out["bqx"].shape == (23, 1)
        assert out["vol"].shape == (23, 1)
        assert out["regime"].shape == (23, len(classes))
        np.testing.assert_allclose(out["regime"].sum(axis=1), 1.0, rtol=1e-5)


def test_manifest_lists_inputs_classes_split_and_each_pair(trained):
    settings, conn, _ = trained
    artifacts = MultitaskArtifacts.of(settings)
    manifest = json.loads(artifacts.manifest.read_text())
    names = input_names(input_columns(conn))
    assert manifest["features"] == names and names[-64:][0] == "emb_00"
    assert not {"bqx_t60", "vol_t60", "regime_t60", "regime_t60_code"} & set(names)
    assert manifest["regime_units"] == 6
    periods = load_periods(conn)
    assert manifest["periods"]["test"]["start_utc"] == periods.test.start_utc.isoformat()
    assert manifest["periods"]["embargo_minutes"] == periods.embargo_minutes >= 690 + 60
    for pair in PAIRS_UNDER_TEST:
        entry = manifest["pairs"][pair]
        assert artifacts.model(pair).exists() and entry["model"] == artifacts.model(pair).name
        assert entry["rows"]["train"] == TINY.sample_rows
        assert set(entry["test"]) == set(MODELS)
        # early stopping watched the weighted total loss; each head's best epoch is recorded
        best = entry["best_epoch"]
        assert set(best["multi_task"]) == {"total", "bqx", "vol", "regime"}
        assert set(best["single_task"]) == {"total", "bqx"}
        for net, epochs in best.items():
            assert all(1 <= e <= entry["epochs_run"][net] for e in epochs.values()), net


def test_vol_head_learns_log_vol_and_maps_back_to_a_mean():
    rng = np.random.default_rng(4)
    vol = np.exp(rng.normal(-3, 0.6, size=5000))
    scaler = TargetScaler.fit(np.zeros(5000), vol)
    z = scaler.to_net("vol", vol)
    assert abs(float(z.mean())) < 1e-5 and float(z.std()) == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(scaler.from_net("vol", z), vol, rtol=1e-5)
    # a net that predicts the mean log vol: smearing turns exp(mean log) (the median) into
    # the mean of vol, exp(mu + sigma^2 / 2) for a log-normal
    smeared = scaler.with_smearing(vol, np.zeros(5000))
    assert smeared.from_net("vol", np.zeros(1))[0] == pytest.approx(vol.mean(), rel=1e-9)
    assert smeared.vol_smearing == pytest.approx(np.exp(0.6**2 / 2), rel=0.05)


def test_scaler_is_fitted_on_the_pairs_train_rows(trained):
    settings, conn, _ = trained
    periods = load_periods(conn)
    columns = input_columns(conn)
    pair = PAIRS_UNDER_TEST[0]
    train = sample_rows(conn, columns, periods.train, pair, TINY.sample_rows, TINY.seed)
    assert periods.train.start_utc.timestamp() <= train.ts_epoch.min()
    assert train.ts_epoch.max() < periods.train.end_utc.timestamp()
    assert np.all(np.diff(train.ts_epoch) > 0), "rows must stay in time order"
    _, x_scaler, t_scaler = load_pair(MultitaskArtifacts.of(settings), pair)
    np.testing.assert_allclose(x_scaler.mean_, fit_scaler(train.x).mean_, rtol=1e-6, atol=1e-9)
    assert t_scaler.bqx_mean == pytest.approx(float(np.mean(train.targets.bqx)), rel=1e-5)


def test_ablation_table_has_finite_scores_for_every_model_and_pair(trained):
    settings, _, result = trained
    reports = settings.reports_dir
    with (reports / "multitask_ablation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["pair"], r["model"]) for r in rows} == {
        (pair, model) for pair in (*PAIRS_UNDER_TEST, "average") for model in MODELS
    }
    bqx, vol = ["bqx_mae", "bqx_r2", "bqx_directional"], ["vol_r2", "vol_mae"]
    regime = ["regime_accuracy", "regime_balanced_accuracy", "regime_macro_f1"]
    proba = ["regime_log_loss"]
    heads = {
        "multi_task": bqx + vol + regime + proba,
        "single_task": bqx,
        "ridge": bqx + vol + regime,
        "har": vol,
        "persistence": bqx + vol,
        "train_mean": bqx + vol + regime + proba,
        "zero": bqx,
    }
    assert set(heads) == set(MODELS)
    for row in rows:
        for metric in [*bqx, *vol, *regime, *proba]:
            if metric in heads[row["model"]]:
                assert math.isfinite(float(row[metric])), (row["pair"], row["model"], metric)
            else:  # the model has no such head
                assert row[metric] == "", (row["pair"], row["model"], metric)
        assert math.isfinite(float(row["majority_rate"]))
        if row["model"] == "zero" and row["pair"] != "average":
            assert float(row["bqx_directional"]) == 0.0
    for name in ("multitask.html", "multitask.md", "multitask_curves.png", "multitask_pairs.png"):
        assert (reports / name).stat().st_size > 500, name
    assert "6 softmax units" in (reports / "multitask.md").read_text()
    for pair in result.pairs:
        assert set(pair.histories["multi_task"]) >= {"bqx_mae", "val_bqx_mae", "val_regime_loss"}
        shares = result.class_frequencies[pair.pair]
        assert sum(shares[c] for c in result.classes) == pytest.approx(1.0)


def test_scores_match_an_independent_computation():
    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    pred = y + rng.normal(scale=0.5, size=200)
    assert r2(y, pred) == pytest.approx(r2_score(y, pred))
    y[:10] = 0.0
    expected = np.mean((pred[10:] > 0) == (y[10:] > 0))
    assert directional_accuracy(y, pred) == pytest.approx(expected)


def test_changing_future_targets_leaves_inputs_unchanged(trained):
    """Scramble every target after T in bqx.ml_targets (rolled back): the inputs of every row
    stay bit for bit the same while the targets change."""
    _, conn, _ = trained
    columns = input_columns(conn)
    pair = PAIRS_UNDER_TEST[0]
    start, end = datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 8, tzinfo=UTC)
    cutoff = datetime(2024, 2, 2, 12, 0, tzinfo=UTC)
    before = read_rows(conn, columns, pair, start, end, with_targets=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "update bqx.ml_targets set bqx_t60 = -bqx_t60 * 3 + 1, vol_t60 = vol_t60 * 7, "
                "regime_t60_code = (regime_t60_code + 1) %% 6 where pair = %s and ts_utc > %s",
                (pair, cutoff),
            )
        after = read_rows(conn, columns, pair, start, end, with_targets=True)
    finally:
        conn.rollback()
    late = before.ts_epoch > cutoff.timestamp()
    assert late.sum() > 100 and (~late).sum() > 100
    np.testing.assert_array_equal(before.ts_epoch, after.ts_epoch)
    np.testing.assert_array_equal(before.x, after.x)
    assert not np.allclose(before.targets.bqx[late], after.targets.bqx[late])
    np.testing.assert_array_equal(before.targets.bqx[~late], after.targets.bqx[~late])
    # the realised vol now reads the target one horizon back: known at t
    known = before.ts_epoch <= cutoff.timestamp() + 3600
    np.testing.assert_array_equal(before.vol_now[known], after.vol_now[known])
    assert not np.allclose(before.vol_now[~known], after.vol_now[~known])


def test_vol_now_is_the_std_of_bqx_60_over_the_last_hour(trained):
    """Oracle: pandas' rolling sample std of bqx_60 over 60 contiguous grid minutes ending at
    t, from bqx.int_m1_series; the persistence forecast of vol_t60 is this value."""
    _, conn, _ = trained
    pair = PAIRS_UNDER_TEST[0]
    start, end = datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 3, tzinfo=UTC)
    rows = read_rows(conn, input_columns(conn), pair, start, end, with_targets=True)
    series = pd.read_sql(
        "select ts_utc, bqx_60 from bqx.int_m1_series where pair = %s and bqx_60 is not null "
        "and ts_utc < %s order by ts_utc",
        conn,
        params=(pair, end),
    )
    conn.rollback()
    epoch = series["ts_utc"].map(lambda t: int(t.timestamp())).to_numpy()
    std = series["bqx_60"].rolling(60).std().to_numpy()
    contiguous = np.r_[np.zeros(59, bool), epoch[59:] - epoch[:-59] == 59 * 60]
    oracle = dict(zip(epoch[contiguous], std[contiguous], strict=True))
    assert len(rows) > 500 and np.isfinite(rows.vol_now).all()
    expected = np.array([oracle[t] for t in rows.ts_epoch])
    np.testing.assert_allclose(rows.vol_now, expected, rtol=1e-6, atol=1e-9)


def test_inputs_at_or_before_t_ignore_bars_after_t(trained):
    """The build on bars cut at T (schema `truncated`) and the full build give the same
    feature inputs up to T, while targets up to T already depend on bars after T."""
    _, conn, _ = trained
    columns = input_columns(conn)
    with conn, conn.cursor() as cur:
        for view in FEATURE_VIEWS:
            cur.execute("select pg_get_viewdef(%s::regclass)", (f"bqx.{view}",))
            definition = re.sub(r"\bbqx\.", "truncated.", cur.fetchone()[0])
            cur.execute(
                sql.SQL("create or replace view truncated.{} as ").format(sql.Identifier(view))
                + sql.SQL(definition)
            )
    settled = CUTOFF.to_pydatetime() - timedelta(minutes=61)
    start = datetime(2024, 1, 28, tzinfo=UTC)
    checked = 0
    for pair in PAIRS_UNDER_TEST:
        full = feature_reader.read_input(conn, columns, pair, start, settled)
        original = feature_reader.SCHEMA
        feature_reader.SCHEMA = "truncated"
        try:
            cut = feature_reader.read_input(conn, columns, pair, start, settled)
        finally:
            feature_reader.SCHEMA = original
        conn.rollback()
        np.testing.assert_array_equal(full.ts_epoch, cut.ts_epoch)
        np.testing.assert_array_equal(full.features, cut.features)
        checked += len(full)
    assert checked > 2000
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from bqx.ml_targets where pair = any(%s) and ts_utc <= %s "
            "and ts_utc > %s",
            (list(PAIRS_UNDER_TEST), CUTOFF.to_pydatetime(), settled),
        )
        assert cur.fetchone()[0] > 0, "targets within 60 minutes of T read bars after T"
    conn.rollback()


def test_predictions_are_written_partitioned_by_pair_and_month(trained, monkeypatch):
    settings, conn, _ = trained
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    outcome = CliRunner().invoke(app, ["predict", "multitask"])
    assert outcome.exit_code == 0, outcome.output
    columns = input_columns(conn)
    with conn.cursor() as cur:
        cur.execute(
            "select partstrat from pg_partitioned_table where partrelid in "
            "('bqx.multitask_predictions'::regclass, "
            "'bqx.multitask_predictions_eurusd'::regclass) order by partrelid"
        )
        assert [row[0] for row in cur.fetchall()] == ["l", "r"]
        for pair in PAIRS_UNDER_TEST:
            for month in (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)):
                rows = read_rows(conn, columns, pair, month, next_month(month))
                leaf = f"bqx.multitask_predictions_{pair.lower()}_{month:%Y_%m}"
                cur.execute(f"select count(*) from {leaf}")
                assert cur.fetchone()[0] == len(rows) > 0, leaf
        model, x_scaler, t_scaler = load_pair(MultitaskArtifacts.of(settings), "GBPUSD")
        rows = read_rows(
            conn, columns, "GBPUSD", *(datetime(2024, 2, d, tzinfo=UTC) for d in (6, 7))
        )
        cur.execute(
            "select bqx_t60_pred, regime_t60_code_pred from bqx.multitask_predictions "
            "where pair = 'GBPUSD' and ts_utc >= '2024-02-06' and ts_utc < '2024-02-07' "
            "order by ts_utc"
        )
        stored = np.array(cur.fetchall())
    conn.rollback()

    expected = predict(model, standardize(x_scaler, rows.x), t_scaler)
    np.testing.assert_allclose(stored[:, 0], expected.bqx, rtol=1e-4, atol=1e-6)
    assert (stored[:, 1] == expected.regime).mean() > 0.99
    # a re-run rewrites the same rows, never duplicates
    first = predict_multitask(conn, settings, PredictConfig(pairs=("EURUSD",)))
    second = predict_multitask(conn, settings, PredictConfig(pairs=("EURUSD",)))
    assert first.rows == second.rows > 0


def test_cli_refuses_an_unknown_pair_in_one_line(trained, monkeypatch):
    settings, _, _ = trained
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    for command in (
        ["train", "multitask", "--pairs", "EURXXX"],
        ["predict", "multitask", "--pairs", "USDCAD"],
    ):
        outcome = CliRunner().invoke(app, command)
        assert outcome.exit_code == 1, outcome.output
        assert len(outcome.output.strip().splitlines()) == 1, outcome.output
