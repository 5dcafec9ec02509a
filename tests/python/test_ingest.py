"""Ingestion against the real PostgreSQL: formats, UTC conversion, quarantine, idempotency."""

from __future__ import annotations

import gzip
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner

from bqx.cli import app
from bqx.errors import BqxUserError
from bqx.ingest import loader as ingest_module
from bqx.ingest.bar_files import pair_from_file_name, parse_file
from bqx.ingest.loader import ingest_file

from .conftest import count

NEW_YORK = ZoneInfo("America/New_York")


def write_histdata_zip(path: Path, pair: str, lines: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"DAT_ASCII_{pair}_M1_2017.csv", "\r\n".join(lines) + "\r\n")
        archive.writestr(f"DAT_ASCII_{pair}_M1_2017.txt", "gap report\n")
    return path


def bars_of(conn, pair: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(
            "select ts_utc, open, high, low, close from raw.m1_bars where pair = %s order by 1",
            (pair,),
        )
        rows = cur.fetchall()
    return pd.DataFrame(rows, columns=["ts_utc", "open", "high", "low", "close"])


def rejected_reasons(conn) -> dict[int, str]:
    with conn.cursor() as cur:
        cur.execute("select line_no, reason from raw.m1_bars_rejected order by line_no")
        return dict(cur.fetchall())


@pytest.mark.parametrize(
    ("name", "pair"),
    [
        ("EURUSD.csv.gz", "EURUSD"),
        ("DAT_ASCII_GBPJPY_M1_2017.csv", "GBPJPY"),
        ("HISTDATA_COM_ASCII_AUDNZD_M12018.zip", "AUDNZD"),
        ("prices.csv", None),
        ("XAUUSD.csv", None),
    ],
)
def test_pair_is_read_from_the_file_name(name, pair):
    assert pair_from_file_name(Path(name)) == pair


def test_histdata_new_york_clock_becomes_utc_across_the_dst_switch(empty_raw, tmp_path):
    # US DST began Sunday 2017-03-12: Friday's close is EST (UTC-5), Sunday's open EDT (UTC-4).
    lines = [
        "20170310 165800;1.06500;1.06520;1.06490;1.06510;0",
        "20170312 170000;1.06600;1.06620;1.06590;1.06610;0",
        "20170705 083000;1.13000;1.13100;1.12900;1.13050;0",  # NFP-style time in summer
        "20171106 083000;1.16000;1.16100;1.15900;1.16050;0",  # after the November switch
    ]
    path = write_histdata_zip(tmp_path / "HISTDATA_COM_ASCII_EURUSD_M12017.zip", "EURUSD", lines)
    result = ingest_file(empty_raw, path)
    assert (result.file_format, result.rows_loaded, result.rows_rejected) == ("histdata", 4, 0)
    got = bars_of(empty_raw, "EURUSD")["ts_utc"].map(lambda ts: ts.astimezone(UTC))
    assert list(got) == [
        datetime(2017, 3, 10, 21, 58, tzinfo=UTC),
        datetime(2017, 3, 12, 21, 0, tzinfo=UTC),
        datetime(2017, 7, 5, 12, 30, tzinfo=UTC),
        datetime(2017, 11, 6, 13, 30, tzinfo=UTC),
    ]


def test_tz_option_overrides_the_histdata_clock(empty_raw, tmp_path):
    path = write_histdata_zip(
        tmp_path / "DAT_ASCII_USDJPY_M1.zip",
        "USDJPY",
        ["20170705 083000;112.1;112.2;112.0;112.1;0"],
    )
    ingest_file(empty_raw, path, tz="UTC")
    assert bars_of(empty_raw, "USDJPY")["ts_utc"][0] == datetime(2017, 7, 5, 8, 30, tzinfo=UTC)


def test_real_slice_loads_exactly_and_its_histdata_twin_converts_to_the_same_minutes(
    empty_raw, real_data, tmp_path
):
    # 3,000 real EURUSD bars spanning a DST switch (2017-03-12), in the shared UTC format...
    frame = pd.read_csv(real_data / "EURUSD.csv.gz")
    ts = pd.to_datetime(frame["ts_utc"], utc=True)
    window = frame[(ts >= "2017-03-10 20:00") & (ts < "2017-03-16 00:00")].head(3000)
    assert len(window) == 3000
    generic = tmp_path / "EURUSD.csv"
    window.to_csv(generic, index=False)
    first = ingest_file(empty_raw, generic)
    assert (first.rows_loaded, first.rows_rejected) == (3000, 0)
    loaded = bars_of(empty_raw, "EURUSD")
    assert loaded["close"].tolist() == window["close"].tolist()

    # ...and the same bars written back on HistData's New York clock (converted by zoneinfo,
    # row by row, independently of the ingest code) land on exactly the same UTC minutes.
    def to_new_york(text: str) -> str:
        moment = datetime.fromisoformat(text).replace(tzinfo=UTC).astimezone(NEW_YORK)
        return moment.strftime("%Y%m%d %H%M%S")

    lines = [
        f"{to_new_york(r.ts_utc)};{r.open};{r.high};{r.low};{r.close};0"
        for r in window.itertuples()
    ]
    twin = write_histdata_zip(tmp_path / "DAT_ASCII_EURUSD_M1_2017.zip", "EURUSD", lines)
    second = ingest_file(empty_raw, twin)
    assert (second.rows_loaded, second.rows_duplicate, second.rows_rejected) == (0, 3000, 0)


SALTED_LINES = [
    "ts_utc,open,high,low,close,volume",  # 1
    "2024-01-02 10:00:00,1.1000,1.1010,1.0990,1.1005,3",  # 2 good
    "2024-01-02 10:01:00,1.1005,1.1012,1.1001,1.1008,4",  # 3 good
    "2024-01-02 10:02:00,abc,1.1012,1.1001,1.1008,4",  # 4 unparseable number
    "2024-01-02 10:03:00,1.1005,1.1012,1.1001",  # 5 too few fields
    "not a date,1.1005,1.1012,1.1001,1.1008,4",  # 6 unparseable timestamp
    "2024-01-02 10:04:00,0,1.1012,1.1001,1.1008,4",  # 7 non-positive price
    "2024-01-02 10:05:00,1.1005,1.0990,1.1001,1.1000,4",  # 8 high below low
    "2024-01-02 10:06:00,1.1020,1.1012,1.1001,1.1008,4",  # 9 open above high
    "2024-01-02 10:07:00,1.1005,1.1012,1.1001,1.0990,4",  # 10 close below low
    "2024-01-02 10:01:00,1.1005,1.1012,1.1001,1.1009,4",  # 11 same minute as 3, other close
    "2024-01-02 10:00:00,1.1000,1.1010,1.0990,1.1005,3",  # 12 identical repeat of 2: skipped
    "2024-01-02 10:08:00,1.1008,1.1015,1.1004,1.1010,2",  # 13 good
    "2024-01-02 10:09:30,1.1008,1.1015,1.1004,1.1010,2",  # 14 not on a minute
]
SALTED_EXPECTED = {
    4: "unparseable",
    5: "unparseable",
    6: "unparseable",
    7: "non_positive_price",
    8: "high_below_low",
    9: "open_close_outside_range",
    10: "open_close_outside_range",
    11: "duplicate_conflict",
    14: "unparseable",
}


def test_each_kind_of_bad_line_is_quarantined_with_its_reason(empty_raw, tmp_path):
    path = tmp_path / "EURUSD_salted.csv"
    path.write_text("\n".join(SALTED_LINES) + "\n")
    result = ingest_file(empty_raw, path)
    assert rejected_reasons(empty_raw) == SALTED_EXPECTED
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate) == (13, 3, 1)
    assert result.rows_rejected == len(SALTED_EXPECTED)
    closes = bars_of(empty_raw, "EURUSD")["close"].tolist()
    assert closes == [1.1005, 1.1008, 1.1010]  # the first version of minute 10:01 wins
    with empty_raw.cursor() as cur:
        cur.execute("select raw_line, source from raw.m1_bars_rejected where line_no = 7")
        assert cur.fetchone() == (SALTED_LINES[6], "EURUSD_salted.csv")


def test_reingest_adds_no_rows(empty_raw, tmp_path):
    path = tmp_path / "EURUSD_salted.csv"
    path.write_text("\n".join(SALTED_LINES) + "\n")
    ingest_file(empty_raw, path)
    before = (
        count(empty_raw, "select count(*) from raw.m1_bars"),
        count(empty_raw, "select count(*) from raw.m1_bars_rejected"),
    )
    again = ingest_file(empty_raw, path)
    after = (
        count(empty_raw, "select count(*) from raw.m1_bars"),
        count(empty_raw, "select count(*) from raw.m1_bars_rejected"),
    )
    assert before == after == (3, len(SALTED_EXPECTED))
    assert (again.rows_loaded, again.rows_duplicate) == (0, 4)


def test_unknown_pair_lines_are_quarantined(empty_raw, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "pair,ts_utc,open,high,low,close,volume\n"
        "EURUSD,2024-01-02 10:00:00,1.1,1.2,1.0,1.1,0\n"
        "XAUUSD,2024-01-02 10:00:00,2000,2001,1999,2000,0\n"
        "usdjpy,2024-01-02 10:00:00,140,141,139,140,0\n"
    )
    result = ingest_file(empty_raw, path)
    assert rejected_reasons(empty_raw) == {3: "unknown_pair"}
    assert result.pairs == ["EURUSD", "USDJPY"]


def test_a_bar_that_conflicts_with_the_database_is_quarantined_not_overwritten(empty_raw, tmp_path):
    first = tmp_path / "EURUSD_a.csv"
    first.write_text("ts_utc,open,high,low,close\n2024-01-02 10:00:00,1.1,1.2,1.0,1.15\n")
    second = tmp_path / "EURUSD_b.csv"
    second.write_text("ts_utc,open,high,low,close\n2024-01-02 10:00:00,1.1,1.2,1.0,1.11\n")
    ingest_file(empty_raw, first)
    result = ingest_file(empty_raw, second)
    assert result.rejected_by_reason == {"duplicate_conflict": 1}
    assert bars_of(empty_raw, "EURUSD")["close"].tolist() == [1.15]


def test_an_interrupted_ingest_leaves_no_half_loaded_file(empty_raw, tmp_path, monkeypatch):
    path = tmp_path / "EURUSD_salted.csv"
    path.write_text("\n".join(SALTED_LINES) + "\n")
    real_copy = ingest_module._copy_frame
    calls = []

    def copy_then_die(cur, frame, table, columns):
        real_copy(cur, frame, table, columns)
        calls.append(table)
        if table == "incoming_rejected":  # bars are already copied: die mid-file
            raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "_copy_frame", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        ingest_file(empty_raw, path)
    assert calls == ["incoming_bars", "incoming_rejected"]
    assert count(empty_raw, "select count(*) from raw.m1_bars") == 0
    assert count(empty_raw, "select count(*) from raw.m1_bars_rejected") == 0
    monkeypatch.undo()
    assert ingest_file(empty_raw, path).rows_loaded == 3  # and a retry loads it whole


def test_gzip_generic_file_with_bom_and_crlf_loads(empty_raw, tmp_path):
    path = tmp_path / "GBPUSD.csv.gz"
    text = (
        "\ufeffts_utc,open,high,low,close,volume\r\n2024-01-02 10:00:00,1.27,1.28,1.26,1.275,1\r\n"
    )
    path.write_bytes(gzip.compress(text.encode()))
    assert ingest_file(empty_raw, path).rows_loaded == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.csv", "no such file"),
        (lambda d: _write(d / "EURUSD.csv", "hello;world\n"), "unknown file format"),
        (
            lambda d: _write(d / "prices.csv", "ts_utc,open,high,low,close\n"),
            "cannot tell the pair",
        ),
        (lambda d: _write(d / "EURUSD.csv", ""), "empty"),
    ],
)
def test_user_errors_raise_one_clear_exception(tmp_path, setup, message):
    with pytest.raises(BqxUserError, match=message):
        parse_file(setup(tmp_path))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "nope/missing.csv"], "no such file"),
        (["ingest", "--pair", "XXXYYY", "EURUSD.csv"], "unknown pair"),
        (["ingest", "--format", "excel", "EURUSD.csv"], "unknown format"),
        (["build", "--months", "2017-13"], "bad month"),
    ],
)
def test_cli_turns_user_errors_into_one_line_and_exit_1(
    settings, tmp_path, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EURUSD.csv").write_text("ts_utc,open,high,low,close\n")
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) <= 2


def test_cli_ingest_prints_a_summary_table(settings, empty_raw, tmp_path, monkeypatch):
    path = tmp_path / "EURUSD_salted.csv"
    path.write_text("\n".join(SALTED_LINES) + "\n")
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0, result.output
    for word in ["ingest summary", "loaded", "duplicate_conflict", "high_below_low"]:
        assert word in result.stdout
