"""Issue 15, the live loop's model step: the autoencoder embeddings (2.17) and multi-task
predictions (2.18) of minutes fed live equal a batch `bqx embed` / `bqx predict multitask` of
the same bars in a second database (1e-9 relative, no missing or extra rows).

An autoencoder and multi-task nets are trained (real TensorFlow, tiny budgets) on a generated
market of three pairs built in full in the batch database, which is then embedded and
predicted in batch. The live database is built up to Wednesday 23:40 (its history would be
`bqx embed`'s; only the live path writes rows here); then minutes are fed one at a time across
the month boundary, each followed by the tail build and the model step serve runs after it
(bqx.tail_build + models_ml.live, in serve's order), one GBPUSD bar arrives late (its tail,
an hour back, recomputes 75 minutes) and a backlog of 40 minutes comes in one tail. Before
this step existed the live database had no rows for those minutes; with TensorFlow's float32
predict a row alone differs from the same row in a block of 8,192 (seen here: 2.6e-6 absolute).

A third database is served by `bqx online serve --no-tail` (a process of its own) while this
test builds its tails, started before any model exists in its home; the models then appear and
serve must use them without a restart: its model step's rows equal the batch database's, and
the online learner's static member is there from the next minutes on.
"""

from __future__ import annotations

import shutil
import time
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bqx import db
from bqx.cli import app
from bqx.config import Settings
from bqx.dbt_runner import BuildScope, run_dbt
from bqx.feature_reader import read_input
from bqx.ingest.feed import play, read_bars
from bqx.synth import SynthConfig, write_market
from bqx.tail_build import DbtSession, tail_build, try_build_lock
from models_ml.autoencoder.embeddings import Encoder
from models_ml.autoencoder.manifest import AutoencoderArtifacts
from models_ml.common.forward import ForwardPass
from models_ml.common.keras import load_keras
from models_ml.common.preprocessing import standardize
from models_ml.live import LiveModels, train_tiny_models
from models_ml.multitask.artifacts import MultitaskArtifacts, load_pair

from .conftest import MODEL_TABLES, assert_same_table, table_rows
from .serve_process import start_serve, stop_serve, wait_started, wait_stepped

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# a pair's cross-pair features need two sisters sharing a currency: three pairs is the least
PAIRS = ("EURUSD", "GBPUSD", "EURGBP")
START = date(2024, 1, 30)  # Tuesday; three days, across into February
SCOPE = BuildScope(train_end="2024-01-31", validation_end="2024-02-01")
LIVE_FROM = pd.Timestamp("2024-01-31 23:40", tz="UTC")  # built in full before
ONE_BY_ONE = pd.Timestamp("2024-02-01 00:20", tz="UTC")  # minutes fed one at a time until
LATE = ("GBPUSD", pd.Timestamp("2024-02-01 00:05", tz="UTC"))  # fed after ONE_BY_ONE
BACKLOG_END = pd.Timestamp("2024-02-01 01:00", tz="UTC")  # then 40 minutes in one tail


@pytest.fixture(scope="module")
def market_bars(tmp_path_factory) -> pd.DataFrame:
    market = tmp_path_factory.mktemp("live_models_market")
    write_market(SynthConfig(start=START, days=3, pairs=PAIRS, seed=8, outage_minutes=0), market)
    return read_bars([market])[0]


def _build(settings: Settings, bars: pd.DataFrame):
    conn = db.connect(settings)
    play(conn, bars, speed=0)
    assert run_dbt(settings, ["--quiet", "seed"]) == 0
    assert run_dbt(settings, ["--quiet", "run"], scope=SCOPE) == 0
    return conn


@pytest.fixture(scope="module")
def batch(make_settings, market_bars, tmp_path_factory):
    """The batch database (every bar of the three days, built in full: the nets are scored on
    Thursday afternoon's test period) with the models trained on it and its embeddings and
    predictions written by `bqx embed` / `bqx predict multitask`'s code."""
    built = make_settings("models_batch")
    home = tmp_path_factory.mktemp("models_home")
    settings = Settings(home=home, database_url=built.database_url)
    conn = _build(settings, market_bars)
    train_tiny_models(conn, settings, PAIRS)
    yield settings, conn
    conn.close()


def test_forward_pass_equals_keras_and_does_not_depend_on_the_batch(batch):
    """The float64 pass of the saved nets agrees with Keras' predict to float32 precision, and
    a row's output is bitwise the same alone, among 28 rows or among 8,192."""
    settings, conn = batch
    keras = load_keras()
    encoder = Encoder.load(conn, settings)
    with conn:
        block = read_input(
            conn,
            encoder.columns,
            "GBPUSD",
            pd.Timestamp("2024-02-01", tz="UTC").to_pydatetime(),
            BACKLOG_END.to_pydatetime(),
        )
    assert len(block) == 60
    rng = np.random.default_rng(3)
    noise = rng.normal(scale=1e-3, size=(8192, block.features.shape[1]))
    features = (block.features[np.arange(8192) % len(block)] * (1 + noise)).astype(np.float32)
    x = standardize(encoder.scaler, features)
    extractor = keras.saving.load_model(AutoencoderArtifacts.of(settings).extractor)
    full = encoder.forward(x)
    np.testing.assert_allclose(full, extractor.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    for rows in (slice(0, 1), slice(4000, 4001), slice(8164, 8192), slice(100, 128)):
        assert np.array_equal(encoder.forward(x[rows]), full[rows]), rows

    model, x_scaler, _ = load_pair(MultitaskArtifacts.of(settings), "GBPUSD")
    net = ForwardPass.of(model)
    inputs = np.hstack([features, encoder.encode(features)])
    scaled = standardize(x_scaler, inputs)
    outputs = net(scaled)
    expected = model.predict(scaled, verbose=0)
    assert set(outputs) == {"bqx", "vol", "regime"}
    for head, values in outputs.items():
        np.testing.assert_allclose(values, expected[head], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["regime"].sum(axis=1), 1.0, rtol=1e-12)
    for rows in (slice(0, 1), slice(8191, 8192), slice(30, 58)):
        alone = net(scaled[rows])
        assert all(np.array_equal(alone[h], outputs[h][rows]) for h in outputs), rows


def test_minutes_fed_live_get_the_embeddings_and_predictions_of_a_batch_run(
    batch, make_settings, market_bars, monkeypatch
):
    batch_settings, batch_conn = batch
    bars = market_bars[market_bars["ts_utc"] < BACKLOG_END]
    ts = bars["ts_utc"]
    late = (bars["pair"] == LATE[0]) & (ts == LATE[1])
    assert late.sum() == 1
    built = make_settings("models_live")
    settings = Settings(home=batch_settings.home, database_url=built.database_url)  # same models
    conn = _build(settings, bars[ts < LIVE_FROM])  # history: `bqx embed`'s (not run here)

    models = LiveModels.open(conn, settings)
    assert models.skipped == [] and models.nets is not None
    session = DbtSession(settings)
    steps = []

    def serve_once(arrived=None) -> None:
        """What serve does after a wake: the tail build, then the model step."""
        tail_build(settings, conn, scope=SCOPE, session=session, arrived_from=arrived)
        steps.append(models.step(conn))

    for minute in sorted(ts[(ts >= LIVE_FROM) & (ts < ONE_BY_ONE)].unique()):
        play(conn, bars[(ts == minute) & ~late], speed=0)
        serve_once()
    play(conn, bars[late], speed=0)
    serve_once(arrived=LATE[1].to_pydatetime())
    play(conn, bars[ts >= ONE_BY_ONE], speed=0)
    serve_once()
    assert models.step(conn) is None  # nothing new: nothing recomputed

    one_by_one = steps[:-2]
    assert len(one_by_one) == 40 and all(s is not None for s in steps)
    # a minute's rows (a tail may start a few minutes back where a pair's bar is missing)
    assert all(len(PAIRS) <= s.embedded == s.predicted < 10 * len(PAIRS) for s in one_by_one)
    assert steps[-2].start == (LATE[1] - pd.Timedelta(minutes=60)).to_pydatetime()
    assert steps[-2].embedded == 75 * len(PAIRS)  # the hour before the late bar, and after
    assert steps[-1].embedded >= 40 * len(PAIRS)
    with conn, conn.cursor() as cur:  # the month crossed live: February's leaves were created
        cur.execute("select to_regclass('bqx.autoencoder_embeddings_gbpusd_2024_02') is not null")
        assert cur.fetchone()[0]
    # the live rows: from the late bar's tail (an hour before it) to the newest minute; the
    # batch database also holds the history before and Thursday after
    span = (steps[-2].start, BACKLOG_END)
    for table in MODEL_TABLES:
        expected = table_rows(batch_conn, table)
        inside = (expected["ts_utc"] >= span[0]) & (expected["ts_utc"] < span[1])
        expected = expected[inside].reset_index(drop=True)
        assert len(expected) == 115 * len(PAIRS), table  # 23:05 to 00:59, every pair
        assert_same_table(table_rows(conn, table), expected, table)

    # `bqx online serve` runs the same step after its tail build: two more minutes, one look
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    more = market_bars[
        (market_bars["ts_utc"] >= BACKLOG_END)
        & (market_bars["ts_utc"] < BACKLOG_END + pd.Timedelta(minutes=2))
    ]
    play(conn, more, speed=0)
    serve = ["online", "serve", "--pairs", "EURUSD", "--arf-models", "1", "--max-steps", "1"]
    outcome = CliRunner().invoke(app, serve)
    assert outcome.exit_code == 0, outcome.output
    assert "live models from" in outcome.output, outcome.output
    with conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) from bqx.multitask_predictions where ts_utc >= %s",
            (BACKLOG_END.to_pydatetime(),),
        )
        assert cur.fetchone()[0] == 2 * len(PAIRS)
    conn.close()


def test_without_trained_models_the_step_says_so_once_and_does_nothing(batch, tmp_path):
    batch_settings, conn = batch
    settings = Settings(home=tmp_path, database_url=batch_settings.database_url)
    models = LiveModels.open(conn, settings)
    assert len(models.skipped) == 1 and "no trained autoencoder" in models.skipped[0]
    assert models.step(conn) is None


def test_serve_without_its_tail_build_steps_models_trained_while_it_runs(
    batch, make_settings, market_bars, tmp_path
):
    """`bqx online serve --no-tail` (a real process), started before any model is trained,
    while this test builds the tails as `bqx build --tail` does (under the build lock): its
    first minutes have no multi-task member and no model rows. Then the trained models
    appear in its home (the manifests moved in last, as training does) and more minutes
    come: serve loads the models at its next look without a restart, its model step writes
    the embeddings and multi-task predictions of the tail builds (equal to the batch
    database's), and every minute it steps from then on carries the static member, equal to
    the stored multi-task prediction of the minute."""
    batch_settings, batch_conn = batch
    built = make_settings("models_pickup")
    settings = Settings(home=tmp_path / "home", database_url=built.database_url)
    ts = market_bars["ts_utc"]
    conn = _build(settings, market_bars[ts < LIVE_FROM])
    session = DbtSession(settings)
    chunks = [LIVE_FROM, LIVE_FROM + pd.Timedelta(minutes=10), ONE_BY_ONE]  # into February
    pair = "EURUSD"  # served; every pair has a row at each minute (the grid fills)
    newest = [ts[ts < end].max() for end in chunks]

    def feed_and_build(first: pd.Timestamp, end: pd.Timestamp) -> datetime:
        """The bars of [first, end), then their tail build as `bqx build --tail` runs it:
        under the build lock, which serve's looks take too (waited for here)."""
        play(conn, market_bars[(ts >= first) & (ts < end)], speed=0)
        while (holder := try_build_lock(settings)) is None:
            time.sleep(0.05)
        try:
            tail_from = tail_build(settings, conn, scope=SCOPE, session=session)
        finally:
            holder.close()
        assert tail_from is not None
        return tail_from

    log = tmp_path / "serve.log"
    serve = start_serve(settings, log, (pair,), ["--no-tail"])
    try:
        wait_started(serve, log, newest[0], 1)
        assert "no trained autoencoder" in log.read_text()
        feed_and_build(chunks[0], chunks[1])
        wait_stepped(conn, serve, newest[1], log, pair)
        # the models appear while serve runs: every file first, the two manifests last
        source, target = batch_settings.artifacts_dir, settings.artifacts_dir
        manifests = [
            AutoencoderArtifacts.of(batch_settings).manifest,
            MultitaskArtifacts.of(batch_settings).manifest,
        ]
        names = {m.name for m in manifests}
        shutil.copytree(
            source, target, dirs_exist_ok=True, ignore=lambda _, files: names & set(files)
        )
        for manifest in manifests:
            moved = target / manifest.relative_to(source)
            shutil.copyfile(manifest, moved.with_suffix(".tmp"))
            moved.with_suffix(".tmp").replace(moved)
        tail_from = feed_and_build(chunks[1], chunks[2])
        wait_stepped(conn, serve, newest[2], log, pair)
        stop_serve(serve, log)
    finally:
        if serve.poll() is None:
            serve.kill()
    out = log.read_text()
    assert "trained models loaded" in out and "live models from" in out, out[-3000:]
    # the model step's rows: from the tail build it first covered (the second, or the first
    # when serve looked between the models' arrival and the second tail) to the newest minute
    for table in MODEL_TABLES:
        found = table_rows(conn, table)
        first = found["ts_utc"].min()
        assert LIVE_FROM - pd.Timedelta(minutes=60) <= first <= tail_from, (table, first)
        assert found["ts_utc"].max() == newest[2], table
        expected = table_rows(batch_conn, table)
        inside = (expected["ts_utc"] >= first) & (expected["ts_utc"] < chunks[2])
        assert_same_table(found, expected[inside].reset_index(drop=True), table)
    # the learner's static member: absent before the models, then every minute's stored one
    with conn, conn.cursor() as cur:
        cur.execute(
            "select o.ts_utc, (o.member_predictions->>'multitask')::float8,"
            " m.bqx_t60_pred::float8 from bqx.online_predictions as o left join"
            " bqx.multitask_predictions as m on m.pair = o.pair and m.ts_utc = o.ts_utc"
            " where o.pair = %s order by o.ts_utc",
            (pair,),
        )
        rows = cur.fetchall()
    before = [r for r in rows if r[0] < chunks[1]]
    after = [r for r in rows if r[0] >= chunks[1]]
    assert len(before) == 1 + ts[(ts >= chunks[0]) & (ts < chunks[1])].nunique(), before
    assert all(r[1] is None for r in before), before
    assert len(after) == ts[(ts >= chunks[1]) & (ts < chunks[2])].nunique() > 20, after
    assert all(r[1] is not None and r[1] == r[2] for r in after), after
    conn.close()
