"""The generated market: triangles, determinism, calendar, gaps and planted lead-lags."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bqx.cli import app
from bqx.pairs import PAIRS, price_decimals
from bqx.synth import SynthConfig, write_market

START = date(2024, 3, 3)  # a Sunday
DAYS = 15


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_market(SynthConfig(start=START, days=DAYS, seed=3), out)
    return out


def closes(market: Path, pair: str) -> pd.Series:
    frame = pd.read_csv(market / f"{pair}.csv.gz", index_col="ts_utc", parse_dates=True)
    return frame["close"]


def test_crosses_equal_the_product_of_their_legs_up_to_rounding(market):
    for cross, left, right, op in [
        ("EURJPY", "EURUSD", "USDJPY", np.multiply),
        ("GBPCHF", "GBPUSD", "USDCHF", np.multiply),
        ("EURGBP", "EURUSD", "GBPUSD", np.divide),
        ("AUDNZD", "AUDUSD", "NZDUSD", np.divide),
        ("CADJPY", "USDJPY", "USDCAD", np.divide),
    ]:
        frame = pd.concat(
            [closes(market, cross), closes(market, left), closes(market, right)],
            axis=1,
            join="inner",
            keys=["cross", "left", "right"],
        )
        implied = op(frame["left"], frame["right"])
        relative = ((frame["cross"] - implied) / implied).abs()
        # each quote is rounded to half a unit of its last decimal
        bound = sum(
            0.5 * 10.0 ** -price_decimals(p) / frame[key]
            for p, key in ((cross, "cross"), (left, "left"), (right, "right"))
        )
        assert len(frame) > 10_000
        assert (relative <= bound * 1.000001).all(), f"{cross}: {relative.max():.2e}"


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_prices(market, tmp_path):
    again = write_market(SynthConfig(start=START, days=DAYS, seed=3), tmp_path / "again")
    for name in ["EURUSD.csv.gz", "CHFJPY.csv.gz", "ground_truth.json"]:
        assert (market / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert again["seed"] == 3
    write_market(SynthConfig(start=START, days=DAYS, seed=4, pairs=("EURUSD",)), tmp_path / "s4")
    assert not closes(tmp_path / "s4", "EURUSD").equals(closes(market, "EURUSD"))


def test_a_subset_of_pairs_gets_the_same_bars_as_the_full_market(market, tmp_path):
    write_market(SynthConfig(start=START, days=DAYS, seed=3, pairs=("GBPJPY",)), tmp_path)
    assert (tmp_path / "GBPJPY.csv.gz").read_bytes() == (market / "GBPJPY.csv.gz").read_bytes()
    assert sorted(p.name for p in tmp_path.glob("*.csv.gz")) == ["GBPJPY.csv.gz"]


def test_bars_are_valid_ohlc_on_the_trading_week_only(market):
    truth = json.loads((market / "ground_truth.json").read_text())
    for pair in PAIRS:
        bars = pd.read_csv(market / f"{pair}.csv.gz", parse_dates=["ts_utc"])
        assert list(bars.columns) == ["ts_utc", "open", "high", "low", "close", "volume"]
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
        assert (bars["low"] > 0).all() and bars["ts_utc"].is_monotonic_increasing
        ts = bars["ts_utc"].dt
        weekend = (
            (ts.day_of_week == 5)
            | ((ts.day_of_week == 4) & (ts.hour >= 22))
            | ((ts.day_of_week == 6) & (ts.hour < 22))
        )
        assert not weekend.any(), pair
        # every trading minute is either a bar or a recorded missing minute
        assert len(bars) + truth["missing_minutes"][pair] == truth["trading_minutes"]
        # decimals of the vendor's quotes: the price is an exact multiple of the unit
        units = bars["close"] * 10 ** price_decimals(pair)
        assert np.allclose(units, units.round(), rtol=0, atol=1e-6)


def test_the_planted_outage_has_no_bars_and_is_longer_than_an_hour(market):
    truth = json.loads((market / "ground_truth.json").read_text())
    (outage,) = truth["gaps"]
    assert outage["minutes"] > 60
    start, end = pd.Timestamp(outage["start_utc"]), pd.Timestamp(outage["end_utc"])
    for pair in ("EURUSD", "NZDCAD"):
        ts = pd.read_csv(market / f"{pair}.csv.gz", parse_dates=["ts_utc"])["ts_utc"]
        assert not ((ts >= start) & (ts < end)).any()
        assert ((ts >= start - pd.Timedelta(minutes=30)) & (ts < start)).sum() > 20


def test_regime_timeline_covers_all_three_regimes(market):
    truth = json.loads((market / "ground_truth.json").read_text())
    spells = truth["regimes"]
    assert {s["regime"] for s in spells} == {"trending", "choppy", "high_vol"}
    assert all(a["end_utc"] <= b["start_utc"] for a, b in zip(spells, spells[1:], strict=False))
    assert abs(sum(truth["regime_share"].values()) - 1) < 1e-3


def test_planted_lead_lags_show_as_cross_correlation_peaks_at_the_planted_lag(market):
    truth = json.loads((market / "ground_truth.json").read_text())
    assert len(truth["pair_links"]) == 3 * 6
    for link in truth["pair_links"]:
        returns = pd.concat(
            [np.log(closes(market, link["follower"])), np.log(closes(market, link["leader"]))],
            axis=1,
            join="inner",
            keys=["follower", "leader"],
        ).diff()
        lags = range(1, 16)
        corr = [abs(returns["follower"].corr(returns["leader"].shift(k))) for k in lags]
        assert lags[int(np.argmax(corr))] == link["lag_minutes"], (link, np.round(corr, 3))
        assert max(corr) > 0.08
    # and the reverse direction shows no such peak
    link = truth["pair_links"][0]
    returns = pd.concat(
        [np.log(closes(market, link["leader"])), np.log(closes(market, link["follower"]))],
        axis=1,
        join="inner",
        keys=["leader", "follower"],
    ).diff()
    reverse = [abs(returns["leader"].corr(returns["follower"].shift(k))) for k in range(1, 16)]
    assert max(reverse) < 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be between"),
        (["--pairs", "EURXXX"], "unknown pair"),
        (["--start", "2024-13-01"], "bad date"),
    ],
)
def test_synth_user_errors_are_one_line_and_exit_1(tmp_path, args, message):
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
