"""Issue 7: the monitoring dashboard, on synthetic rows of the online learner's tables.

The tables are created here from the contract DDL and filled with a generated week of
predictions, weights and drift events, so these tests do not depend on the online learner.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg2.extras
import pytest

from bqx import db
from bqx.dashboard import write_dashboard
from bqx.dashboard.data import WINDOWS, DashboardConfig, load_dashboard_data
from bqx.dashboard.render import EMPTY_MESSAGE
from bqx.dashboard.server import build_page

from .browser import chromium_fixture, free_port, pixel_spread, wait_for_http  # noqa: F401

# The online learner's tables as /tmp/online_tables.sql (stage 2.19) defines them.
CONTRACT_DDL = """
create schema if not exists bqx;
create table if not exists bqx.online_predictions (
    pair text not null, ts_utc timestamptz not null, horizon_minutes integer not null,
    prediction double precision not null, member_predictions jsonb not null,
    weights jsonb not null, static_prediction double precision, realized double precision,
    learned_at timestamptz, created_at timestamptz not null default now(),
    primary key (pair, ts_utc, horizon_minutes)
);
create table if not exists bqx.drift_events (
    event_id bigserial primary key, pair text not null, ts_utc timestamptz not null,
    detector text not null check (detector in ('adwin', 'mae_ratio')),
    evidence jsonb not null, created_at timestamptz not null default now(),
    unique (pair, ts_utc, detector)
);
create table if not exists bqx.ensemble_weights (
    pair text not null, ts_utc timestamptz not null, member text not null,
    weight double precision not null, recent_mae double precision,
    primary key (pair, ts_utc, member)
);
"""

PAIRS = ("EURUSD", "GBPUSD", "USDJPY")
MEMBERS = ("arf", "srp", "linear")
HORIZON = 60
# A replay on a historical clock: the newest prediction is far from today's wall clock.
NEWEST = datetime(2024, 2, 9, 21, 55, tzinfo=UTC)
STEP = timedelta(minutes=5)
DAYS = 8


def synthetic_predictions(seed: int = 3) -> pd.DataFrame:
    """Predictions every 5 minutes; realized known (and learned) once the horizon has passed."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(NEWEST - timedelta(days=DAYS), NEWEST, freq=STEP)
    frames = []
    for k, pair in enumerate(PAIRS):
        realized = np.cumsum(rng.normal(0, 0.02, len(stamps))) * 0.1 + rng.normal(0, 0.05)
        online = realized + rng.normal(0, 0.02 + 0.01 * k, len(stamps))
        static = realized + rng.normal(0, 0.04, len(stamps))
        frame = pd.DataFrame(
            {
                "pair": pair,
                "ts_utc": stamps,
                "horizon_minutes": HORIZON,
                "prediction": online,
                "static_prediction": static,
                "realized": realized,
            }
        )
        pending = frame["ts_utc"] > NEWEST - timedelta(minutes=HORIZON)
        frame.loc[pending, "realized"] = np.nan
        frame["learned_at"] = frame["ts_utc"] + timedelta(minutes=HORIZON)
        frame.loc[pending, "learned_at"] = pd.NaT
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _none(value):
    return None if pd.isna(value) else value


def fill_tables(conn, predictions: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    with conn, conn.cursor() as cur:
        cur.execute(CONTRACT_DDL)
        psycopg2.extras.execute_values(
            cur,
            "insert into bqx.online_predictions (pair, ts_utc, horizon_minutes, prediction, "
            "member_predictions, weights, static_prediction, realized, learned_at) values %s",
            [
                (
                    r.pair,
                    r.ts_utc.to_pydatetime(),
                    r.horizon_minutes,
                    r.prediction,
                    json.dumps({m: r.prediction for m in MEMBERS}),
                    json.dumps({m: 1 / len(MEMBERS) for m in MEMBERS}),
                    r.static_prediction,
                    _none(r.realized),
                    None if pd.isna(r.learned_at) else r.learned_at.to_pydatetime(),
                )
                for r in predictions.itertuples()
            ],
            page_size=5000,
        )
        weight_rows = []
        for pair in PAIRS:
            for ts in pd.date_range(NEWEST - timedelta(days=DAYS), NEWEST, freq="30min"):
                raw = np.abs(rng.normal([3, 2, 1], 0.7)) + 0.05
                for member, weight in zip(MEMBERS, raw / raw.sum(), strict=True):
                    weight_rows.append((pair, ts.to_pydatetime(), member, float(weight), 0.03))
        psycopg2.extras.execute_values(
            cur, "insert into bqx.ensemble_weights values %s", weight_rows, page_size=5000
        )
        for i in range(12):
            cur.execute(
                "insert into bqx.drift_events (pair, ts_utc, detector, evidence) "
                "values (%s, %s, %s, %s)",
                (
                    PAIRS[i % len(PAIRS)],
                    NEWEST - timedelta(hours=11 * i + 1),
                    "adwin" if i % 3 else "mae_ratio",
                    json.dumps({"width": 400 + i, "mean_before": 0.02, "mean_after": 0.05}),
                ),
            )


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    return synthetic_predictions()


@pytest.fixture(scope="module")
def online(make_settings, predictions):
    """(settings, connection) of a database holding a generated week of online learning."""
    settings = make_settings("dashboard")
    conn = db.connect(settings)
    fill_tables(conn, predictions)
    yield settings, conn
    conn.close()


def test_accuracy_windows_end_at_the_newest_prediction(online, predictions):
    _, conn = online
    data = load_dashboard_data(conn, DashboardConfig())
    assert data.newest_utc == NEWEST
    assert [(a.window, a.horizon_minutes) for a in data.accuracy] == [
        (label, HORIZON) for label, _ in WINDOWS
    ]
    # accuracy windows end at the newest prediction with a known outcome, an hour earlier
    scored_until = predictions.dropna(subset=["realized"])["ts_utc"].max()
    assert scored_until == NEWEST - timedelta(minutes=HORIZON)
    for row in data.accuracy:
        assert row.scored_until == scored_until
        span = pd.Timedelta(dict(WINDOWS)[row.window])
        inside = predictions[
            (predictions["ts_utc"] > scored_until - span) & (predictions["ts_utc"] <= scored_until)
        ]
        scored = inside.dropna(subset=["realized"])
        error = scored["prediction"] - scored["realized"]
        hits = np.sign(scored["prediction"]) == np.sign(scored["realized"])
        assert row.predictions == len(inside)
        assert row.scored == len(scored)
        assert row.mae == pytest.approx(error.abs().mean(), rel=1e-9)
        assert row.rmse == pytest.approx(np.sqrt((error**2).mean()), rel=1e-9)
        static_mae = (scored["static_prediction"] - scored["realized"]).abs().mean()
        assert row.static_mae == pytest.approx(static_mae, rel=1e-9)
        assert row.hit_rate == pytest.approx(hits.mean(), rel=1e-9)
    assert data.drift_event_count == 12
    # learning updates are placed at the minute the outcome arrived: ts_utc + horizon
    learned_at_market = predictions["ts_utc"] + timedelta(minutes=HORIZON)
    for span, field in ((timedelta(hours=1), "updates_hour"), (timedelta(days=7), "updates_week")):
        expected = predictions.loc[learned_at_market > NEWEST - span, "learned_at"].count()
        assert sum(getattr(p, field) for p in data.pair_summaries) == expected > 0


def test_pair_filter_narrows_every_view(online):
    _, conn = online
    data = load_dashboard_data(conn, DashboardConfig(pair="gbpusd"))
    assert data.pairs == ["GBPUSD"]
    assert {e.pair for e in data.drift_events} == {"GBPUSD"}
    assert [p.pair for p in data.pair_summaries] == ["GBPUSD"]
    assert data.accuracy[-1].predictions == 7 * 24 * 12  # one week of 5-minute rows


def test_empty_or_missing_tables_show_the_replay_hint(make_settings):
    settings = make_settings("dashboard_empty")
    pages = [build_page(settings, DashboardConfig())]  # no tables at all
    with db.transaction(settings) as conn, conn.cursor() as cur:
        cur.execute(CONTRACT_DDL)
    pages.append(build_page(settings, DashboardConfig()))  # tables, no rows
    for page in pages:
        assert EMPTY_MESSAGE.startswith("no online predictions yet")
        assert "no online predictions yet" in page and "<code>bqx online replay</code>" in page
        assert 'id="empty-state"' in page and "Traceback" not in page
    assert "Tables not created yet" in pages[0] and "Tables not created yet" not in pages[1]


def test_written_page_is_self_contained(online):
    settings, _ = online
    path = write_dashboard(settings)
    assert path == settings.reports_dir / "dashboard.html"
    page = path.read_text()
    charts = re.findall(r'<img class="chart" src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(charts) == 4
    # nothing to fetch: no external script, stylesheet, font or image
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script src" not in page and "<link" not in page and "@import" not in page


@pytest.fixture(scope="module")
def served(online):
    """`bqx dashboard` in a subprocess on a free loopback port; yields its URL."""
    settings, _ = online
    port = free_port()
    env = {**os.environ, "BQX_HOME": str(settings.home), "BQX_DATABASE_URL": settings.database_url}
    command = [sys.executable, "-m", "bqx.cli", "dashboard", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_dashboard_renders_charts_in_headless_chromium(served, chromium, tmp_path):
    dom = chromium.dump_dom(served)
    assert 'data-charts-rendered="4/4"' in dom, "not every chart decoded and laid out"
    sizes = [tuple(map(int, m)) for m in re.findall(r'data-rendered="(\d+)x(\d+)"', dom)]
    assert len(sizes) == 4 and all(w > 600 and h > 150 for w, h in sizes), sizes
    for heading in ("Prediction accuracy", "Ensemble weights", "Drift events", "update frequency"):
        assert heading in dom
    shot = chromium.screenshot(served, tmp_path / "dashboard.png", size=(1400, 2800))
    spread, colours = pixel_spread(shot)
    assert spread > 0.05 and colours > 50, f"screenshot looks blank ({spread=}, {colours=})"


def test_reload_shows_new_rows_and_bad_pair_is_refused(served, online):
    _, conn = online
    with conn, conn.cursor() as cur:
        cur.execute(
            "insert into bqx.drift_events (pair, ts_utc, detector, evidence) "
            "values ('EURUSD', %s, 'mae_ratio', '{\"probe\": \"reload_probe\"}')",
            (NEWEST,),
        )
    try:
        page = urllib.request.urlopen(served, timeout=60).read().decode()
        assert "reload_probe" in page and "13 in the last week" in page
        filtered = urllib.request.urlopen(served + "?pair=USDJPY", timeout=60).read().decode()
        assert "reload_probe" not in filtered
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(served + "?pair=XXXYYY", timeout=60)
        assert refused.value.code == 400
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("delete from bqx.drift_events where evidence ? 'probe'")
