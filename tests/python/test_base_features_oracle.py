"""Base features built by dbt on a real year of EURUSD, checked against numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bqx import db
from bqx.dbt_runner import run_dbt
from bqx.ingest.loader import ingest_file

from .feature_oracle import REG_WINDOWS, features_at, minute_grid

PAIR = "EURUSD"
REG_COLUMNS = [
    "quadratic_term",
    "linear_term",
    "constant_term",
    "prediction",
    "residual",
    "r2",
    "rmse",
]


@pytest.fixture(scope="module")
def real_build(make_settings, real_data):
    settings = make_settings("oracle")
    conn = db.connect(settings)
    ingest_file(conn, real_data / f"{PAIR}.csv.gz")
    conn.close()
    code = run_dbt(
        settings,
        # cautious: skip tests that also touch unselected models (has_every_partition of
        # `returns` has the seed and the source as parents too, so eager selection runs it)
        [
            "build",
            "--select",
            "+reg_bqx +reg_rate +bqx_values +volatility",
            "--indirect-selection",
            "cautious",
        ],
    )
    assert code == 0, "dbt build of the base layer failed (see output above)"
    return settings


def fetch(conn, table: str, stamps: list[pd.Timestamp]) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(
            f"select * from bqx.{table} where pair = %s and ts_utc = any(%s) order by ts_utc",
            (PAIR, [s.to_pydatetime() for s in stamps]),
        )
        names = [d[0] for d in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=names)
    return frame.set_index("ts_utc")


def test_features_match_numpy_on_random_rows_of_a_real_year(real_build, real_data):
    bars = pd.read_csv(real_data / f"{PAIR}.csv.gz", usecols=["ts_utc", "close"])
    bars["ts_utc"] = pd.to_datetime(bars["ts_utc"], utc=True)
    grid = minute_grid(bars)
    position = pd.Series(np.arange(len(grid.ts)), index=grid.ts.as_unit("ns"))

    conn = db.connect(real_build)
    with conn.cursor() as cur:
        cur.execute("select ts_utc from bqx.reg_bqx where pair = %s order by ts_utc", (PAIR,))
        available = pd.DatetimeIndex([row[0] for row in cur.fetchall()]).tz_convert("UTC")
    rng = np.random.default_rng(2017)
    picks = list(rng.choice(available, size=120, replace=False))
    picks += list(available[-30:])  # the precision trap lives late in the year
    stamps = sorted(pd.Timestamp(s) for s in picks)

    tables = {
        "bqx_values": fetch(conn, "bqx_values", stamps),
        "reg_rate": fetch(conn, "reg_rate", stamps),
        "reg_bqx": fetch(conn, "reg_bqx", stamps),
        "volatility": fetch(conn, "volatility", stamps),
    }
    conn.close()

    expected_rows, actual_rows = [], []
    for stamp in stamps:
        i = int(position[stamp])
        assert i - grid.segment_start[i] >= 60 + max(REG_WINDOWS) - 1
        expected = features_at(grid, i)
        actual = {}
        for name in expected:
            table, _, column = name.rpartition(".")
            if not table:
                table = "volatility" if name.startswith("vol_") else "bqx_values"
            actual[name] = float(tables[table].loc[stamp, column])
        expected_rows.append(expected)
        actual_rows.append(actual)
    expected_frame = pd.DataFrame(expected_rows)
    actual_frame = pd.DataFrame(actual_rows)[expected_frame.columns]

    # relative error < 1e-6, against the value or, for values that cross zero, a floor of
    # 1e-3 of the column's typical magnitude (a relative error of a zero is meaningless)
    scale = expected_frame.abs().median().clip(lower=1e-300)
    denominator = expected_frame.abs().clip(lower=1e-3 * scale, axis=1)
    relative = ((actual_frame - expected_frame).abs() / denominator).max()
    worst = relative.sort_values(ascending=False).head(5)
    assert (relative < 1e-6).all(), f"worst relative errors:\n{worst}"
    assert len(expected_frame.columns) == 10 + 2 * 6 * 7 + 7
