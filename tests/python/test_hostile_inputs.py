"""Issue 18, the door for bars: what a hostile but fair user feeds `bqx ingest` (cases 2, 3, 6,
7 and 12 of the issue; helper tests of the other cases live in test_hostile_builds.py).

Every test here failed on main before the door: inf and 1e308 prices and negative volume were
loaded, any date was accepted, a zip's second CSV was ignored, a NUL byte or a year-9999 line
stopped the whole file, a BOM cost the first bar, the repeated New York hour was called
nonexistent, and prices with a decimal too many passed ingest and failed the dbt build.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from bqx.cli import app
from bqx.errors import BqxUserError
from bqx.ingest.bar_files import open_bar_file, parse_file
from bqx.ingest.feed import quarantine
from bqx.ingest.loader import ingest_file

from .conftest import count

NEW_YORK = ZoneInfo("America/New_York")
GOOD = "1.10000;1.10020;1.09990;1.10010;5"  # open, high, low, close, volume (HistData order)


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def loaded(conn, pair: str = "EURUSD") -> list[datetime]:
    with conn.cursor() as cur:
        cur.execute("select ts_utc from raw.m1_bars where pair = %s order by 1", (pair,))
        return [ts.astimezone(UTC) for (ts,) in cur.fetchall()]


def reasons(conn) -> dict[int, str]:
    with conn.cursor() as cur:
        cur.execute("select line_no, reason from raw.m1_bars_rejected order by line_no")
        return dict(cur.fetchall())


def run_cli(monkeypatch, settings, args: list[str], env: dict[str, str] | None = None):
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(app, args)


# --- case 2: non-finite and absurd values ----------------------------------------------------


def test_case_2_non_finite_absurd_prices_and_negative_volume_are_quarantined(empty_raw, tmp_path):
    lines = [
        "20170103 100000;" + GOOD,
        "20170103 100100;1.10000;inf;1.09990;1.10010;5",
        "20170103 100200;1.10000;1e308;1.09990;1.10010;5",
        "20170103 100300;-inf;1.10020;1.09990;1.10010;5",
        "20170103 100400;1.10000;1.10020;1.09990;1.10010;-1",
        "20170103 100500;110.000;110.020;109.990;110.010;5",  # a JPY price in EURUSD
        "20170103 100600;1.10000;1.10020;1.09990;1.10010;inf",
        "20170103 100700;" + GOOD,
    ]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_2017.csv", lines)
    result = ingest_file(empty_raw, path)
    assert (result.rows_loaded, result.rows_rejected) == (2, 6)
    assert reasons(empty_raw) == {
        2: "non_finite_value",
        3: "price_outside_band",
        4: "non_finite_value",
        5: "negative_volume",
        6: "price_outside_band",
        7: "non_finite_value",
    }
    with empty_raw.cursor() as cur:
        cur.execute("select max(high), min(volume) from raw.m1_bars")
        assert cur.fetchone() == (1.1002, 5.0)


def test_case_2_the_band_is_the_configured_factor_around_the_pairs_reference(tmp_path):
    from bqx.config import BarRules  # imported here: the other tests must run (and fail) on main

    # USDJPY's reference is 148: 20 lies within a factor 10, 14 does not; a factor 20 lets 14 in
    lines = ["20170103 100000;20.000;20.010;19.990;20.000;0", "20170103 100100;14.000;14.0;14;14;0"]
    path = write(tmp_path / "DAT_ASCII_USDJPY_M1_2017.csv", lines)
    assert list(parse_file(path).rejected["reason"]) == ["price_outside_band"]
    assert parse_file(path, rules=BarRules(price_band_factor=20)).rejected.empty


# --- case 3: timestamp bounds ------------------------------------------------------------------


def test_case_3_bars_outside_the_time_window_are_quarantined(empty_raw, tmp_path):
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    lines = [
        "20170103 100000;" + GOOD,
        "29990103 100000;" + GOOD,  # the year-2999 bar of the issue
        tomorrow.strftime("%Y%m%d %H%M00;") + GOOD,  # from the future
        "19891231 120000;" + GOOD,  # before 1990 (17:00 UTC; the window is UTC)
        "19900102 000000;" + GOOD,  # early in the window's first days (05:00 UTC)
    ]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_2017.csv", lines)
    result = ingest_file(empty_raw, path)
    assert (result.rows_loaded, result.rows_rejected) == (2, 3)
    assert reasons(empty_raw) == {n: "outside_time_window" for n in (2, 3, 4)}
    assert [ts.year for ts in loaded(empty_raw)] == [1990, 2017]


def test_case_3_the_window_is_set_by_env_var_through_the_cli(
    empty_raw, settings, tmp_path, monkeypatch
):
    lines = ["19850103 100000;" + GOOD, "20170103 100000;" + GOOD, "20180103 100000;" + GOOD]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_2017.csv", lines)
    env = {"BQX_BARS_NOT_BEFORE": "1980-01-01", "BQX_BARS_NOT_AFTER": "2017-12-31"}
    result = run_cli(monkeypatch, settings, ["ingest", str(path)], env)
    assert result.exit_code == 0, result.output
    assert [ts.year for ts in loaded(empty_raw)] == [1985, 2017]
    assert reasons(empty_raw) == {3: "outside_time_window"}
    bad = run_cli(monkeypatch, settings, ["ingest", str(path)], {"BQX_BARS_NOT_BEFORE": "x"})
    assert bad.exit_code == 1 and "BQX_BARS_NOT_BEFORE" in bad.stderr
    assert "Traceback" not in bad.output


# --- case 6: a zip holding two CSVs ----------------------------------------------------------


def test_case_6_a_zip_with_two_csvs_is_refused_by_name_not_half_loaded(
    empty_raw, settings, tmp_path, monkeypatch
):
    path = tmp_path / "EURUSD_2017.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DAT_ASCII_EURUSD_M1_201701.csv", "20170103 100000;" + GOOD + "\r\n")
        archive.writestr("DAT_ASCII_EURUSD_M1_201702.csv", "20170203 100000;" + GOOD + "\r\n")
        archive.writestr("DAT_ASCII_EURUSD_M1_2017.txt", "gap report\n")
    result = run_cli(monkeypatch, settings, ["ingest", str(path)])
    assert result.exit_code == 1
    assert "DAT_ASCII_EURUSD_M1_201701.csv" in result.stderr
    assert "DAT_ASCII_EURUSD_M1_201702.csv" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) <= 2
    assert count(empty_raw, "select count(*) from raw.m1_bars") == 0


# --- case 7: one bad line never blocks a file ------------------------------------------------


def test_case_7_nul_byte_year_9999_bom_and_the_repeated_hour(empty_raw, tmp_path):
    lines = [
        "\ufeff20171103 100000;" + GOOD,  # BOM: the first bar must load
        "20171103 100100;1.10000;1.10020\x00;1.09990;1.10010;5",
        "99991231 235900;" + GOOD,
        "20171105 013000;" + GOOD,  # 01:30 happens twice in New York that night
        "20170312 023000;" + GOOD,  # 02:30 never happens in New York that night
        "20171105 023000;" + GOOD,
    ]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_2017.csv", lines)
    result = ingest_file(empty_raw, path)
    assert reasons(empty_raw) == {
        2: "unparseable",
        3: "outside_time_window",
        4: "ambiguous_local_time",
        5: "nonexistent_local_time",
    }
    assert loaded(empty_raw) == [
        datetime(2017, 11, 3, 14, 0, tzinfo=UTC),
        datetime(2017, 11, 5, 7, 30, tzinfo=UTC),
    ]
    assert (result.rows_read, result.rows_loaded) == (6, 2)
    with empty_raw.cursor() as cur:
        cur.execute("select raw_line from raw.m1_bars_rejected where line_no = 2")
        assert "\\x00" in cur.fetchone()[0]


# --- case 12: price precision ----------------------------------------------------------------


def test_case_12_more_decimals_than_the_seed_is_an_ingest_time_error_naming_the_setting(
    empty_raw, settings, tmp_path, monkeypatch
):
    lines = ["20170103 100000;" + GOOD, "20170103 100100;1.100005;1.10002;1.09990;1.10001;5"]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_2017.csv", lines)
    with pytest.raises(BqxUserError, match=r"price_decimals in seeds/pairs\.csv"):
        ingest_file(empty_raw, path)
    result = run_cli(monkeypatch, settings, ["ingest", str(path)])
    assert result.exit_code == 1
    assert "EURUSD" in result.stderr and "seeds/pairs.csv" in result.stderr
    assert "line 2" in result.stderr and "Traceback" not in result.output
    assert count(empty_raw, "select count(*) from raw.m1_bars") == 0  # nothing half loaded


# --- a salted file: every bad-line kind among good ones -------------------------------------

SALT = {  # line text after the stamp column → reason; stamps are New York wall clock
    "garbage": "unparseable",
    "1.1,1.2": "unparseable",  # too few fields
    "1.10000,,1.09990,1.10010,5": "unparseable",
    "1.10000,1.10020,1.09990,1.10010\x00,5": "unparseable",
    "1.10000,inf,1.09990,1.10010,5": "non_finite_value",
    "1.10000,1.10020,1.09990,1.10010,-inf": "non_finite_value",
    "0,1.10020,1.09990,1.10010,5": "non_positive_price",
    "1.10000,1e308,1.09990,1.10010,5": "price_outside_band",
    "0.10000,0.10020,0.09990,0.10010,5": "price_outside_band",
    "1.10000,1.09980,1.09990,1.09985,5": "high_below_low",
    "1.10030,1.10020,1.09990,1.10010,5": "open_close_outside_range",
    "1.10000,1.10020,1.09990,1.09980,5": "open_close_outside_range",
    "1.10000,1.10020,1.09990,1.10010,-5": "negative_volume",
}


def test_salted_file_loads_every_good_line_and_quarantines_every_bad_one(empty_raw, tmp_path):
    start = datetime(2017, 4, 3, 0, 0)  # New York wall clock, a Monday, no DST switch near
    lines = ["ts_utc,pair,open,high,low,close,volume"]
    expected_bars: dict[tuple[str, datetime], int] = {}
    expected_reasons: dict[int, str] = {}
    salts = list(SALT.items())
    for i in range(20_000):
        stamp = start + timedelta(minutes=i)
        line_no = len(lines) + 1
        text = f"{stamp:%Y-%m-%d %H:%M:%S},EURUSD,"
        if i % 997 == 13:  # a bad line of each kind, in turn
            fields, reason = salts[(i // 997) % len(salts)]
            lines.append(text + fields)
            expected_reasons[line_no] = reason
            continue
        lines.append(text + "1.10000,1.10020,1.09990,1.10010,5")
        utc = stamp.replace(tzinfo=NEW_YORK).astimezone(UTC)
        expected_bars[("EURUSD", utc)] = line_no
    special = [  # stamp, pair, values → reason (None: a good bar)
        ("2017-03-12 02:30:00", "EURUSD", "nonexistent_local_time"),
        ("2017-11-05 01:30:00", "EURUSD", "ambiguous_local_time"),
        ("1989-12-31 12:00:00", "EURUSD", "outside_time_window"),
        ("9999-12-31 23:59:00", "EURUSD", "outside_time_window"),
        ("2017-04-20 10:00:00", "XAUUSD", "unknown_pair"),
        ("2017-04-20 10:00:00", "USDJPY", None),
    ]
    for stamp, pair, reason in special:
        values = "112.000,112.020,111.990,112.010,5" if pair != "EURUSD" else GOOD.replace(";", ",")
        lines.append(f"{stamp},{pair},{values}")
        if reason:
            expected_reasons[len(lines)] = reason
        else:
            local = datetime.fromisoformat(stamp).replace(tzinfo=NEW_YORK)
            expected_bars[(pair, local.astimezone(UTC))] = len(lines)
    lines.append(lines[5].replace("1.10010,5", "1.10011,5"))  # a conflicting repeat
    expected_reasons[len(lines)] = "duplicate_conflict"
    lines.append(lines[6])  # an identical repeat: a skipped duplicate, not a rejection
    lines.append("")  # blank lines are skipped
    path = write(tmp_path / "salted.csv", lines)
    assert set(SALT.values()) | {r for *_, r in special if r} | {"duplicate_conflict"} == set(
        expected_reasons.values()
    )

    result = ingest_file(empty_raw, path, tz="America/New_York")
    with empty_raw.cursor() as cur:
        cur.execute("select pair, ts_utc from raw.m1_bars")
        got = {(pair, ts.astimezone(UTC)) for pair, ts in cur.fetchall()}
    assert got == set(expected_bars)
    assert reasons(empty_raw) == expected_reasons
    assert (result.rows_loaded, result.rows_duplicate) == (len(expected_bars), 1)
    assert result.rows_rejected == len(expected_reasons)


# --- review finding: one write path for raw.m1_bars_rejected ----------------------------------


def test_feed_quarantines_through_the_loader_as_ingest_does(empty_raw, tmp_path):
    lines = ["20170103 100000;" + GOOD, "garbage", "20171105 013000;" + GOOD]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_2017.csv", lines)
    assert quarantine(empty_raw, [parse_file(path)]) == 2
    fed = reasons(empty_raw)
    assert fed == {2: "unparseable", 3: "ambiguous_local_time"}
    assert quarantine(empty_raw, [parse_file(path)]) == 2  # once per file content and line
    assert count(empty_raw, "select count(*) from raw.m1_bars_rejected") == 2
    with empty_raw, empty_raw.cursor() as cur:
        cur.execute("truncate raw.m1_bars_rejected")
    ingest_file(empty_raw, path)
    assert reasons(empty_raw) == fed
    assert open_bar_file(path).source == "DAT_ASCII_EURUSD_M1_2017.csv"
