"""Cross-pair data quality (models/quality): on a generated market, triangularly consistent by
construction, one planted stale quote (a broken triangle, inside its pair's recent range) and
one planted spike are exactly what bqx.quality_warnings names."""

from __future__ import annotations

import gzip
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from bqx import db
from bqx.dbt_runner import run_dbt
from bqx.ingest.loader import ingest_files
from bqx.pairs import CURRENCIES, price_decimals
from bqx.sql import ensure_raw_schema
from bqx.synth import SynthConfig, write_market

PRICES = ["open", "high", "low", "close"]


def read_bars(path) -> pd.DataFrame:
    return pd.read_csv(path, parse_dates=["ts_utc"])


def write_bars(path, bars: pd.DataFrame) -> None:
    text = bars.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S")
    path.write_bytes(gzip.compress(text.encode()))


def plant_stale_quote(bars: pd.DataFrame) -> pd.Timestamp:
    """Replace one bar by an earlier bar of the last 30, where that moves its close the most:
    a feed that repeated an old quote. The bar stays inside the recent range (no spike)."""
    close = bars["close"].to_numpy()
    best = (0.0, 0, 0)
    for lag in range(1, 31):
        moved = np.abs(np.log(close[lag:] / close[:-lag]))
        at = int(np.argmax(moved[100:-100])) + 100
        if moved[at] > best[0]:
            best = (moved[at], at + lag, at)
    _, row, stale = best
    bars.loc[row, [*PRICES, "volume"]] = bars.loc[stale, [*PRICES, "volume"]].to_numpy()
    return bars.loc[row, "ts_utc"]


def plant_spike(bars: pd.DataFrame, pair: str, row: int) -> pd.Timestamp:
    """One bar 2% above its neighbours (rounded to the pair's decimals), the next one back."""
    bars.loc[row, PRICES] = (bars.loc[row, PRICES] * 1.02).round(price_decimals(pair))
    return bars.loc[row, "ts_utc"]


@pytest.fixture(scope="module")
def quality_built(make_settings, tmp_path_factory):
    out = tmp_path_factory.mktemp("quality_market")
    write_market(SynthConfig(start=date(2024, 1, 1), days=4, seed=11), out)
    stale_pair, spike_pair = "EURJPY", "GBPUSD"
    bars = read_bars(out / f"{stale_pair}.csv.gz")
    stale_at = plant_stale_quote(bars)
    write_bars(out / f"{stale_pair}.csv.gz", bars)
    bars = read_bars(out / f"{spike_pair}.csv.gz")
    spike_at = plant_spike(bars, spike_pair, len(bars) // 2)
    write_bars(out / f"{spike_pair}.csv.gz", bars)

    settings = make_settings("quality")
    conn = db.connect(settings)
    with conn:
        ensure_raw_schema(conn)
    ingest_files(conn, [out])
    assert (
        run_dbt(
            settings, ["build", "--select", "+quality_warnings", "--indirect-selection", "cautious"]
        )
        == 0
    )
    yield conn, {(stale_pair, stale_at), (spike_pair, spike_at)}, (spike_pair, spike_at), settings
    conn.close()


def rows(conn, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def minute(ts) -> pd.Timestamp:
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None)


def test_quality_warnings_name_exactly_the_planted_bars(quality_built):
    conn, planted, *_ = quality_built
    named = {
        (pair, minute(ts))
        for pair, ts in rows(conn, "select pair, ts_utc from bqx.quality_warnings")
    }
    assert named == planted


def test_the_stale_quote_breaks_all_its_triangles_and_no_other_pair_is_blamed(quality_built):
    conn, planted, spike, _ = quality_built
    (stale,) = planted - {spike}
    warnings = rows(
        conn,
        "select pair, ts_utc, check_name, triangles_broken, triangles_checked "
        "from bqx.quality_warnings where check_name = 'triangle'",
    )
    by_key = {(pair, minute(ts)): (broken, checked) for pair, ts, _, broken, checked in warnings}
    broken, checked = by_key[stale]  # EURJPY is in 6 of the 56 triangles, all broken
    assert broken == checked >= 4  # (a generated pair misses 0.5% of its minutes)
    breaks = rows(conn, "select pair_ab, pair_bc, pair_ac, ts_utc from bqx.quality_triangle_breaks")
    at_stale = [b for b in breaks if minute(b[3]) == stale[1]]
    assert len(at_stale) == broken and all(stale[0] in b[:3] for b in at_stale)


def test_the_spike_is_stored_as_a_spike_not_silently_used(quality_built):
    conn, _, spike, _ = quality_built
    spikes = rows(conn, "select pair, ts_utc, excursion_ranges from bqx.quality_spikes")
    assert [(pair, minute(ts)) for pair, ts, _ in spikes] == [spike]
    assert spikes[0][2] > 10
    checks = rows(
        conn,
        f"select check_name from bqx.quality_warnings where pair = '{spike[0]}' order by 1",
    )
    assert [c for (c,) in checks] == ["spike", "triangle"]  # the spike breaks its triangles too


def test_every_triangle_of_the_universe_is_checked(quality_built):
    *_, settings = quality_built
    compiled = settings.home / "dbt/target/compiled/bqx/models/quality/quality_triangle_breaks.sql"
    found = re.findall(
        r"'(\w{6})' as pair_ab,\s*'(\w{6})' as pair_bc,\s*'(\w{6})' as pair_ac",
        compiled.read_text(),
    )
    # the oracle: every currency triple, quoted in market order (EURUSD × USDJPY = EURJPY)
    expected = {
        (a + b, b + c, a + c)
        for i, a in enumerate(CURRENCIES)
        for j, b in enumerate(CURRENCIES[i + 1 :], start=i + 1)
        for c in CURRENCIES[j + 1 :]
    }
    assert len(expected) == 56 and set(found) == expected and len(found) == 56
