"""Stage 2.17: one autoencoder for all pairs, its manifest, and embeddings written back.

Trains with a tiny budget (seconds) on the session's generated market (`built`), into a BQX_HOME
of its own, and embeds into that database.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import psycopg2.extras
import pytest
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from bqx import feature_reader
from bqx.cli import app
from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.feature_reader import input_columns, month_starts, next_month, sample_input
from bqx.pairs import PAIRS
from bqx.periods import load_periods
from models_ml.autoencoder.embeddings import EMBEDDING_COLUMNS, EmbedConfig, embed, ensure_partition
from models_ml.autoencoder.interpretation import InterpretationConfig, interpret
from models_ml.autoencoder.manifest import AutoencoderArtifacts
from models_ml.autoencoder.training import AutoencoderConfig, train_autoencoder
from models_ml.common.keras import load_keras
from models_ml.common.preprocessing import fit_robust_scaler, fit_scaler, standardize

# Keras 3.15 turns its variables into arrays with np.array(x), which numpy 2.4 flags; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

TINY = AutoencoderConfig(sample_rows=5_600, validation_rows=1_400, epochs=4, batch_size=64)
KEYS = ("pair", "ts_utc")
TARGETS = {"bqx_t60", "vol_t60", "regime_t60", "regime_t60_code"}
RERUN_PAIRS = ("EURUSD", "AUDNZD")


@pytest.fixture(scope="module")
def trained(built, split, tmp_path_factory):
    """(settings of a fresh BQX_HOME on the built database, connection, TrainingResult)."""
    built_settings, conn = built
    home = tmp_path_factory.mktemp("autoencoder_home")
    settings = Settings(home=home, database_url=built_settings.database_url)
    return settings, conn, train_autoencoder(conn, settings, TINY)


@pytest.fixture(scope="module")
def embedded(trained):
    settings, conn, _ = trained
    return embed(conn, settings, EmbedConfig())


def view_columns(conn, view: str) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(f"select * from bqx.{view} limit 0")
        names = [d.name for d in cur.description]
        cur.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'bqx' and table_name = %s order by ordinal_position",
            (view,),
        )
        typed = cur.fetchall()
    assert [name for name, _ in typed] == names
    return [(name, kind) for name, kind in typed if name not in KEYS]


def database_features(conn) -> list[tuple[str, str]]:
    """The ML inputs as README states them: both views' columns, except that price levels come
    only relative to the current price (rate_index and reg_rate_w*_prediction left out,
    reg_rate_w*_constant_term as its distance from rate_index)."""
    base = []
    for name, kind in view_columns(conn, "ml_feature_matrix"):
        if name == "rate_index" or re.fullmatch(r"reg_rate_w\d+_prediction", name):
            continue
        if re.fullmatch(r"reg_rate_w\d+_constant_term", name):
            name += "_vs_rate_index"
        base.append((name, kind))
    return base + view_columns(conn, "ml_cross_pair_features")


def feature_value(values: dict, name: str) -> float:
    """One ML input of a row of the views (see database_features)."""
    if name.endswith("_vs_rate_index"):
        return float(values[name.removesuffix("_vs_rate_index")]) - float(values["rate_index"])
    return float(values[name])


def test_encoder_maps_every_input_column_to_64_dimensions(trained):
    settings, conn, _ = trained
    keras = load_keras()
    artifacts = AutoencoderArtifacts.of(settings)
    width = len(database_features(conn))
    model = keras.saving.load_model(artifacts.model)
    extractor = keras.saving.load_model(artifacts.extractor)
    assert model.input_shape == (None, width)
    assert model.output_shape == (None, width)
    x = np.random.default_rng(0).normal(size=(37, width)).astype(np.float32)
    assert extractor.predict(x, verbose=0).shape == (37, 64)
    # the .h5 export is named with the real widths and reloads (compile=False) to the same net
    export = keras.saving.load_model(artifacts.h5_export(width), compile=False)
    assert artifacts.h5_export(width).name == f"autoencoder_{width}_to_64.h5"
    np.testing.assert_allclose(export.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_manifest_lists_the_database_features_in_order(trained):
    settings, conn, result = trained
    manifest = json.loads(AutoencoderArtifacts.of(settings).manifest.read_text())
    expected = database_features(conn)
    assert manifest["features"] == [name for name, _ in expected]
    assert manifest["feature_types"] == [kind for _, kind in expected]
    assert manifest["input_width"] == len(expected)
    assert not TARGETS & set(manifest["features"]) and not set(KEYS) & set(manifest["features"])
    assert set(manifest["samples"]["train"]["rows_per_pair"]) == set(PAIRS)
    assert manifest["samples"]["train"]["rows"] == TINY.sample_rows
    assert manifest == json.loads(json.dumps(result.manifest))


def test_reconstruction_beats_the_mean_predictor(trained):
    settings, conn, result = trained
    metrics = result.manifest["metrics"]
    assert metrics["validation_mae"] < metrics["mean_predictor_mae"]
    assert result.manifest["targets"]["beats_mean_predictor"]["passed"]
    # the figures are real: the same validation sample (same seed) gives the same errors
    keras = load_keras()
    artifacts = AutoencoderArtifacts.of(settings)
    scaler = pickle.loads(artifacts.scaler.read_bytes())
    model = keras.saving.load_model(artifacts.model)
    periods = load_periods(conn)
    sample = sample_input(
        conn, input_columns(conn), periods.validation, TINY.validation_rows, TINY.seed, PAIRS
    )
    x = standardize(scaler, sample.features)
    error = model.predict(x, verbose=0) - x
    assert np.mean(np.abs(error)) == pytest.approx(metrics["validation_mae"], rel=1e-4)
    assert np.mean(np.abs(x)) == pytest.approx(metrics["mean_predictor_mae"], rel=1e-4)


def test_scaler_is_fitted_on_train_period_rows_only(trained):
    settings, conn, _ = trained
    artifacts = AutoencoderArtifacts.of(settings)
    periods = load_periods(conn)
    rows = np.load(artifacts.training_rows)
    train_ts = [datetime.fromtimestamp(int(t), UTC) for t in rows["train_ts_epoch"]]
    valid_ts = [datetime.fromtimestamp(int(t), UTC) for t in rows["validation_ts_epoch"]]
    assert all(periods.train.start_utc <= t < periods.train.end_utc for t in train_ts)
    assert all(periods.validation.start_utc <= t < periods.validation.end_utc for t in valid_ts)
    assert max(valid_ts) < periods.test.start_utc

    # fit our own scaler on those train rows, read with plain SQL, and on train + test rows
    names = ["bqx_15", "minutes_since_gap", "bqx_60", "vol_60"]
    train = fetch_columns(conn, names, rows["train_pair"], rows["train_ts_epoch"])
    test = fetch_test_rows(conn, names, periods.test, per_pair=100)
    scaler = pickle.loads(artifacts.scaler.read_bytes())
    manifest_names = json.loads(artifacts.manifest.read_text())["features"]
    index = [manifest_names.index(name) for name in names]
    ours = robust_oracle(train)
    np.testing.assert_allclose(scaler.mean_[index], ours[0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(scaler.scale_[index], ours[1], rtol=1e-5, atol=1e-9)
    leaky = robust_oracle(np.vstack([train, test]))
    shift = np.abs(leaky[0] - scaler.mean_[index]) / scaler.scale_[index]
    assert shift.max() > 0.05, "a scaler that saw test rows should differ"


def robust_oracle(x: np.ndarray, q: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) of each column clipped to its own [q, 1 - q] quantiles, computed plainly."""
    means, sds = [], []
    for column in x.T:
        values = column[np.isfinite(column)]
        low, high = np.quantile(values, [q, 1 - q])
        clipped = np.clip(values, low, high)
        means.append(clipped.mean())
        sds.append(clipped.std())
    return np.array(means), np.array(sds)


def test_robust_scaler_clips_sentinels_and_leaves_flags_unscaled():
    rng = np.random.default_rng(0)
    x = np.column_stack(
        [
            rng.normal(size=10_000),
            np.where(rng.random(10_000) < 0.001, 1.0, 0.0),  # a rare 0/1 flag
            np.where(rng.random(10_000) < 0.002, 10.0, rng.normal(size=10_000)),  # sentinels
        ]
    )
    scaler = fit_robust_scaler(x)
    z = scaler.transform(x)
    assert list(scaler.flag_) == [False, True, False]
    assert z[:, 1].max() == pytest.approx(1 - x[:, 1].mean())  # a set flag is < 1, not z ≈ 30
    assert np.abs(StandardScaler().fit_transform(x)[:, 1]).max() > 20  # what it was
    assert np.abs(z[:, 2]).max() < 4  # sentinels clipped to the train 99.5% quantile
    far = scaler.transform(np.array([[1e6, 1.0, -1e6]]))
    assert np.all(np.isfinite(far)) and np.abs(far[0, [0, 2]]).max() < 4


def test_autoencoder_is_at_least_pca_64_on_the_validation_sample(trained):
    """Against an independent PCA-64 (scikit-learn, fitted on the same train sample, scaled
    with the saved scaler): the saved model's validation MAE is not above it."""
    from sklearn.decomposition import PCA

    settings, conn, result = trained
    keras = load_keras()
    artifacts = AutoencoderArtifacts.of(settings)
    scaler = pickle.loads(artifacts.scaler.read_bytes())
    model = keras.saving.load_model(artifacts.model)
    periods = load_periods(conn)
    columns = input_columns(conn)
    train = sample_input(conn, columns, periods.train, TINY.sample_rows, TINY.seed, PAIRS)
    valid = sample_input(conn, columns, periods.validation, TINY.validation_rows, TINY.seed, PAIRS)
    x_train, x_valid = standardize(scaler, train.features), standardize(scaler, valid.features)
    pca = PCA(n_components=64).fit(x_train)
    pca_mae = np.mean(np.abs(pca.inverse_transform(pca.transform(x_valid)) - x_valid))
    model_mae = np.mean(np.abs(model.predict(x_valid, verbose=0) - x_valid))
    assert model_mae <= pca_mae * (1 + 1e-5), (model_mae, pca_mae)
    assert result.manifest["metrics"]["pca_64_mae"] == pytest.approx(pca_mae, rel=1e-4)
    assert result.manifest["targets"]["at_least_pca_64"]["passed"]


def test_a_residual_that_hurts_is_not_kept(built, tmp_path):
    """A learning rate that wrecks the network (Adam at 0.9): without the fall-back to the PCA
    start this run's validation MAE is far above PCA-64's; with it, it equals PCA-64's."""
    built_settings, conn = built
    settings = Settings(home=tmp_path, database_url=built_settings.database_url)
    wreck = AutoencoderConfig(
        sample_rows=2_800, validation_rows=700, epochs=2, batch_size=64, learning_rate=0.9
    )
    metrics = train_autoencoder(conn, settings, wreck).manifest["metrics"]
    assert not metrics["residual_kept"]
    assert metrics["validation_mae"] == pytest.approx(metrics["pca_64_mae"], rel=1e-4)


def fetch_columns(conn, names, pairs, ts_epoch) -> np.ndarray:
    """Feature values of the given keys straight from bqx.ml_feature_matrix, keys' order."""
    found = {}
    with conn.cursor() as cur:
        for pair in np.unique(pairs):
            stamps = [datetime.fromtimestamp(int(t), UTC) for t in ts_epoch[pairs == pair]]
            cur.execute(
                f"select extract(epoch from ts_utc)::bigint, {', '.join(names)} "
                "from bqx.ml_feature_matrix where pair = %s and ts_utc = any(%s)",
                (str(pair), stamps),
            )
            found.update({(str(pair), row[0]): row[1:] for row in cur.fetchall()})
    return np.array([found[(str(p), int(t))] for p, t in zip(pairs, ts_epoch, strict=True)])


def fetch_test_rows(conn, names, period, per_pair: int) -> np.ndarray:
    with conn.cursor() as cur:
        cur.execute(
            f"select {', '.join(names)} from (select *, row_number() over "
            "(partition by pair order by ts_utc) as n from bqx.ml_feature_matrix "
            "where ts_utc >= %s and ts_utc < %s) t where n %% 10 = 0 and n <= %s",
            (period.start_utc, period.end_utc, per_pair * 10),
        )
        return np.array(cur.fetchall(), dtype=np.float64)


def test_fit_scaler_keeps_constant_features_finite():
    x = np.column_stack([np.full(50, 3.0), np.linspace(0, 1, 50), np.full(50, 1e-20)])
    x[::7, 2] += 1e-30  # float noise on a constant column
    scaler = fit_scaler(x.astype(np.float32))
    scaled = standardize(scaler, np.vstack([x, [[4.0, 2.0, np.nan]]]).astype(np.float32))
    assert np.isfinite(scaled).all()
    assert scaler.scale_[0] == 1.0 and scaler.scale_[2] == 1.0
    assert scaled[-1, 0] == pytest.approx(1.0) and scaled[-1, 2] == 0.0


def test_month_starts_follow_utc_calendar_months():
    plus_two = timezone(timedelta(hours=2))
    months = month_starts(
        datetime(2024, 2, 1, 1, 0, tzinfo=plus_two), datetime(2024, 3, 1, tzinfo=UTC)
    )
    assert [f"{m:%Y_%m}" for m in months] == ["2024_01", "2024_02"]
    assert next_month(datetime(2024, 12, 1, tzinfo=UTC)) == datetime(2025, 1, 1, tzinfo=UTC)


def test_binary_copy_reader_cuts_rows_at_any_chunk_boundary(monkeypatch):
    """The COPY parser against a stream built by hand, fed in uneven pieces."""
    rng = np.random.default_rng(5)
    keys = np.arange(1_000, dtype=np.int64) * 60 + 1_700_000_000
    values = rng.normal(size=(1_000, 3))
    row = np.dtype(
        [("n", ">i2"), ("kl", ">i4"), ("k", ">i8")]
        + [f for i in range(3) for f in ((f"l{i}", ">i4"), (f"v{i}", ">f8"))]
    )
    rows = np.zeros(len(keys), dtype=row)
    rows["n"], rows["kl"], rows["k"] = 4, 8, keys
    for i in range(3):
        rows[f"l{i}"], rows[f"v{i}"] = 8, values[:, i]
    stream = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff"
    monkeypatch.setattr(feature_reader, "COPY_CHUNK_BYTES", 997)
    sink = feature_reader._BinaryRows(3)
    cuts = np.sort(rng.choice(len(stream), size=300, replace=False))
    for piece in np.split(np.frombuffer(stream, dtype=np.uint8), cuts):
        sink.write(piece.tobytes())
    got_keys, got_values = sink.finish()
    assert np.array_equal(got_keys, keys)
    np.testing.assert_array_equal(got_values, values.astype(np.float32))


def test_loss_curve_png_exists(trained):
    settings, _, result = trained
    path = settings.reports_dir / "autoencoder_loss.png"
    assert result.loss_plot == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def mismatched_home(settings: Settings, tmp_path, edit) -> Settings:
    home = Settings(home=tmp_path / "home", database_url=settings.database_url)
    shutil.copytree(settings.artifacts_dir, home.artifacts_dir)
    manifest_path = AutoencoderArtifacts.of(home).manifest
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))
    return home


def test_embed_refuses_a_model_trained_on_other_features(trained, tmp_path, monkeypatch):
    settings, conn, _ = trained

    def drop_and_rename(manifest):
        manifest["features"].remove("vol_60")
        manifest["features"][manifest["features"].index("minutes_since_gap")] = "gap_renamed"

    home = mismatched_home(settings, tmp_path, drop_and_rename)
    with pytest.raises(BqxUserError) as caught:
        embed(conn, home, EmbedConfig(pairs=("EURUSD",)))
    message = str(caught.value)
    assert "missing from the database: gap_renamed" in message
    assert "not known to the model: minutes_since_gap, vol_60" in message

    monkeypatch.setenv("BQX_HOME", str(home.home))
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, ["embed"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "vol_60" in lines[0]


def test_embed_refuses_reordered_features(trained, tmp_path):
    settings, conn, _ = trained

    def swap(manifest):
        f = manifest["features"]
        f[1], f[2] = f[2], f[1]

    home = mismatched_home(settings, tmp_path, swap)
    with pytest.raises(BqxUserError, match="another order"):
        embed(conn, home, EmbedConfig(pairs=("EURUSD",)))


def expected_partitions(conn) -> dict[tuple[str, str], int]:
    """Rows of the joined input per (pair, month), counted in SQL."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select pair, to_char(ts_utc at time zone 'UTC', 'YYYY_MM'), count(*)
            from (
                select pair, ts_utc from bqx.ml_feature_matrix
                intersect
                select pair, ts_utc from bqx.ml_cross_pair_features
            ) keys
            group by 1, 2
            """
        )
        return {(pair, month): n for pair, month, n in cur.fetchall()}


def test_embed_writes_every_partition_with_the_input_rows(trained, embedded):
    settings, conn, _ = trained
    expected = expected_partitions(conn)
    assert len({pair for pair, _ in expected}) == len(PAIRS) and len(expected) > len(PAIRS)
    assert {(w.pair, f"{w.month:%Y_%m}"): w.rows for w in embedded.written} == expected
    with conn.cursor() as cur:
        for (pair, month), n in expected.items():
            cur.execute(f"select count(*) from bqx.autoencoder_embeddings_{pair.lower()}_{month}")
            assert cur.fetchone()[0] == n, (pair, month)
        cur.execute(
            """
            select count(*) from (
                select pair, ts_utc from bqx.autoencoder_embeddings
                except
                select pair, ts_utc from bqx.ml_feature_matrix
                intersect
                select pair, ts_utc from bqx.ml_cross_pair_features
            ) stray
            """
        )
        assert cur.fetchone()[0] == 0
        cur.execute(
            f"select count(*) from bqx.autoencoder_embeddings "
            f"where num_nulls({', '.join(EMBEDDING_COLUMNS)}) > 0"
        )
        assert cur.fetchone()[0] == 0
        cur.execute(
            "select partstrat from pg_partitioned_table "
            "where partrelid in ('bqx.autoencoder_embeddings'::regclass, "
            "'bqx.autoencoder_embeddings_eurusd'::regclass) order by partrelid"
        )
        assert [row[0] for row in cur.fetchall()] == ["l", "r"]
        cur.execute(
            "select count(*) from information_schema.columns where table_schema = 'bqx' "
            "and table_name = 'autoencoder_embeddings' and column_name like 'emb\\_%%'"
        )
        assert cur.fetchone()[0] == 64


def test_embeddings_are_the_encoder_output_of_their_own_row(trained, embedded):
    settings, conn, _ = trained
    keras = load_keras()
    artifacts = AutoencoderArtifacts.of(settings)
    extractor = keras.saving.load_model(artifacts.extractor)
    scaler = pickle.loads(artifacts.scaler.read_bytes())
    features = database_features(conn)
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "select * from bqx.autoencoder_embeddings where pair = 'GBPJPY' "
            "order by md5(ts_utc::text) limit 5"
        )
        stored = cur.fetchall()
        rows = []
        for row in stored:
            values = {}
            for view in ("ml_feature_matrix", "ml_cross_pair_features"):
                cur.execute(
                    f"select * from bqx.{view} where pair = %s and ts_utc = %s",
                    (row["pair"], row["ts_utc"]),
                )
                values.update(cur.fetchone())
            rows.append([feature_value(values, name) for name, _ in features])
    x = standardize(scaler, np.array(rows, dtype=np.float32))
    expected = extractor.predict(x, verbose=0)
    got = np.array([[row[c] for c in EMBEDDING_COLUMNS] for row in stored], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def snapshot(conn, pairs) -> np.ndarray:
    with conn.cursor() as cur:
        cur.execute(
            f"select extract(epoch from ts_utc), {', '.join(EMBEDDING_COLUMNS)} "
            "from bqx.autoencoder_embeddings where pair = any(%s) order by pair, ts_utc",
            (list(pairs),),
        )
        return np.array(cur.fetchall(), dtype=np.float64)


def total_rows(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("select count(*) from bqx.autoencoder_embeddings")
        return cur.fetchone()[0]


def test_embedding_twice_leaves_the_same_rows(trained, embedded):
    settings, conn, _ = trained
    before, total = snapshot(conn, RERUN_PAIRS), total_rows(conn)
    # a leaf whose input has gone (a month without data) must not keep old rows
    with conn, conn.cursor() as cur:
        stale = ensure_partition(conn, "EURUSD", datetime(2023, 12, 1, tzinfo=UTC))
        cur.execute(
            f"insert into bqx.{stale} select pair, ts_utc - interval '40 days', "
            f"{', '.join(EMBEDDING_COLUMNS)} from bqx.autoencoder_embeddings "
            "where pair = 'EURUSD' and ts_utc < '2024-02-01' limit 3"
        )
    again = embed(conn, settings, EmbedConfig(pairs=RERUN_PAIRS))
    after = snapshot(conn, RERUN_PAIRS)
    assert total_rows(conn) == total
    assert after.shape == before.shape
    assert np.array_equal(after, before)
    assert again.emptied == [stale]
    assert again.rows == sum(w.rows for w in embedded.written if w.pair in RERUN_PAIRS)


def test_interpretation_reports_clusters_dimensions_and_importance(trained, embedded):
    settings, conn, _ = trained
    config = InterpretationConfig(
        sample_rows=2_000,
        validation_rows=1_000,
        silhouette_rows=800,
        permutation_repeats=2,
        pairs=("EURUSD", "GBPUSD", "AUDNZD", "USDJPY"),
    )
    result = interpret(conn, settings, config)
    summary = json.loads(result.summary_path.read_text())
    assert -1 <= summary["silhouette"]["value"] <= 1
    assert len(summary["clusters"]) == 10
    assert sum(c["rows"] for c in summary["clusters"]) == summary["rows"]["validation"]
    base = {name for name, _ in view_columns(conn, "ml_feature_matrix")}
    assert [d["dimension"] for d in summary["dimensions"]] == list(EMBEDDING_COLUMNS)
    assert all(d["feature"] in base and abs(d["r"]) <= 1 + 1e-9 for d in summary["dimensions"])
    importance = summary["importance"]
    assert importance["inputs"] == len(database_features(conn)) + 64
    assert 0 <= importance["embedding_share_of_top"] <= 1
    assert set(summary["targets"]) == {
        "reconstruction_mae",
        "beats_mean_predictor",
        "silhouette",
        "embeddings_in_top_20pct",
    }
    page = result.html.read_text()
    for image in summary["images"].values():
        assert f'src="{image}"' in page and (result.html.parent / image).exists()
    assert "pass" in page or "FAIL" in page
