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
from bqx.ingest import bar_rows, copy_binary
from bqx.ingest.bar_files import open_bar_file, pair_from_file_name, parse_file
from bqx.ingest.bar_rows import parse_chunk
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


@pytest.mark.parametrize(
    ("lines", "bars_table", "loaded"),
    [
        (SALTED_LINES, "incoming_bars", 3),  # repeated minutes: the staged path
        (SALTED_LINES[:4] + SALTED_LINES[12:13], "raw.m1_bars", 3),  # new minutes: direct COPY
    ],
)
def test_an_interrupted_ingest_leaves_no_half_loaded_file(
    empty_raw, tmp_path, monkeypatch, lines, bars_table, loaded
):
    path = tmp_path / "EURUSD_salted.csv"
    path.write_text("\n".join(lines) + "\n")
    real_copy = copy_binary.copy_rows
    calls = []

    def copy_then_die(cur, table, columns, payload, binary):
        real_copy(cur, table, columns, payload, binary)
        calls.append(table)
        if table == "incoming_rejected":  # bars are already copied: die mid-file
            raise KeyboardInterrupt

    monkeypatch.setattr(copy_binary, "copy_rows", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        ingest_file(empty_raw, path)
    assert calls == [bars_table, "incoming_rejected"]
    assert count(empty_raw, "select count(*) from raw.m1_bars") == 0
    assert count(empty_raw, "select count(*) from raw.m1_bars_rejected") == 0
    monkeypatch.undo()
    assert ingest_file(empty_raw, path).rows_loaded == loaded  # and a retry loads it whole


def salted_long_file(good_lines: int, every: int) -> tuple[list[str], dict[int, str]]:
    """Good bars with a bad line of the salted file after every `every`-th of them, and
    the reason each bad line must get, by line number."""
    kinds = [
        (SALTED_LINES[n - 1], reason)
        for n, reason in SALTED_EXPECTED.items()
        if reason != "duplicate_conflict"  # that one is only bad next to its line 3
    ]
    start = pd.Timestamp("2024-01-01 00:00")
    lines, expected = [SALTED_LINES[0]], {}
    for i in range(good_lines):
        stamp = (start + pd.Timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},1.1{i % 97:03d},1.1200,1.0900,1.1{(i * 7) % 97:03d},{i % 5}")
        if i % every == every - 1:
            line, reason = kinds[(i // every) % len(kinds)]
            lines.append(line)
            expected[len(lines)] = reason
    return lines, expected


def test_bad_lines_deep_in_a_long_file_keep_their_line_numbers_and_reasons(
    empty_raw, tmp_path, monkeypatch
):
    # chunks of ~5,000 lines hold a bad line each: the fast path bisects around it
    monkeypatch.setattr("bqx.ingest.bar_files.CHUNK_BYTES", 256 << 10)
    lines, expected = salted_long_file(30_000, every=4_000)
    path = tmp_path / "EURUSD.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = ingest_file(empty_raw, path)
    assert rejected_reasons(empty_raw) == expected
    assert (result.rows_read, result.rows_loaded) == (len(lines) - 1, 30_000)
    with empty_raw.cursor() as cur:
        cur.execute("select line_no, raw_line from raw.m1_bars_rejected")
        assert all(lines[n - 1] == raw for n, raw in cur.fetchall())


@pytest.mark.parametrize("file_format", ["generic", "histdata"])
def test_fast_and_careful_parsing_agree_line_for_line(tmp_path, monkeypatch, file_format):
    # the careful path (line by line, pandas) is the reference for the fast one (pyarrow and
    # numpy on clean chunks); one file, each chunk parsed both ways, with bad lines near
    # and in the New York DST switches
    stamps = pd.date_range("2017-03-12 01:00", periods=3_000, freq="min")
    stamps = stamps.append(pd.date_range("2017-11-05 00:30", periods=3_000, freq="min"))
    lines = []
    for i, stamp in enumerate(stamps):
        o, c = 1.1 + (i % 89) * 1e-5, 1.1 + (i % 83) * 1e-5
        fields = [o, max(o, c) + 1e-5 * (i % 3), min(o, c) - 1e-5 * (i % 4), c, i % 7]
        if file_format == "histdata":
            lines.append(stamp.strftime("%Y%m%d %H%M%S;") + ";".join(map(str, fields)))
        else:
            lines.append(stamp.strftime("%Y-%m-%d %H:%M:%S,") + ",".join(map(str, fields)))
    for i in range(7, len(lines), 997):  # a few bad lines of many kinds
        lines[i] = [lines[i].replace("1.1", "-1.1"), "", lines[i] + ";7", "garbage"][i % 4]
    header = [] if file_format == "histdata" else ["ts_utc,open,high,low,close,volume"]
    path = tmp_path / "EURUSD.csv"
    path.write_text("\r\n".join(header + lines) + "\r\n")

    def parse(fast: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        if not fast:
            monkeypatch.setattr(bar_rows, "_fast_rows", lambda chunk, layout: None)
        bar_file = open_bar_file(path, tz="America/New_York")
        parsed = [parse_chunk(chunk, bar_file.layout) for chunk in bar_file.chunks(100_000)]
        monkeypatch.undo()
        bars = pd.concat([p.bars_frame(with_raw_lines=True) for p in parsed], ignore_index=True)
        return bars, pd.concat([p.rejected for p in parsed], ignore_index=True)

    fast_bars, fast_rejected = parse(fast=True)
    careful_bars, careful_rejected = parse(fast=False)
    pd.testing.assert_frame_equal(fast_bars, careful_bars, check_exact=True)
    pd.testing.assert_frame_equal(fast_rejected, careful_rejected)
    assert set(fast_rejected["reason"]) >= {"unparseable", "nonexistent_local_time"}
    assert len(fast_bars) > 5_500


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
