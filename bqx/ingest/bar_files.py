"""Read and validate 1-minute bar files: HistData ASCII M1 (zip or csv) and the generic CSV.

Pure functions, no database: a file becomes a frame of good bars and a frame of rejected
lines (line number, raw text, reason). Nothing is dropped silently.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.errors import BqxUserError
from bqx.pairs import PAIRS, validate_pair

FORMATS = ("auto", "generic", "histdata")
HISTDATA_TZ = "America/New_York"  # clock of the 2017-2018 HistData files, DST included
GENERIC_REQUIRED = ("ts_utc", "open", "high", "low", "close")
PRICE_COLUMNS = ["open", "high", "low", "close"]
BAR_COLUMNS = ["pair", "ts_utc", "open", "high", "low", "close", "volume"]

# Reasons a line is quarantined (raw.m1_bars_rejected.reason).
UNPARSEABLE = "unparseable"
NON_POSITIVE_PRICE = "non_positive_price"
HIGH_BELOW_LOW = "high_below_low"
OPEN_CLOSE_OUTSIDE_RANGE = "open_close_outside_range"
DUPLICATE_CONFLICT = "duplicate_conflict"
UNKNOWN_PAIR = "unknown_pair"
NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"

_HISTDATA_LINE = re.compile(r"^\d{8} \d{6};")
_PAIR_IN_NAME = re.compile(r"(?<![A-Z])([A-Z]{6})(?![A-Z])")


@dataclass
class ParsedFile:
    """A bar file after parsing and validation, before loading."""

    source: str  # file name, as recorded in raw.m1_bars.source
    sha256: str
    file_format: str
    rows_read: int
    bars: pd.DataFrame  # BAR_COLUMNS + line_no, raw_line; unique (pair, ts_utc)
    duplicates_in_file: int  # identical repeats of an earlier line, skipped
    rejected: pd.DataFrame  # pair, line_no, raw_line, reason


def pair_from_file_name(path: Path) -> str | None:
    """The known pair code in a file name (EURUSD.csv.gz, DAT_ASCII_EURUSD_M1_2017.csv, ...)."""
    name = path.name.upper().replace("-", "_")
    for token in re.split(r"[^A-Z0-9]", name):
        for match in _PAIR_IN_NAME.finditer(token):
            if match.group(1) in PAIRS:
                return match.group(1)
        # HistData zips glue the period on: HISTDATA_COM_ASCII_EURUSD_M12017
        if len(token) >= 6 and token[:6] in PAIRS:
            return token[:6]
    return None


def read_text(path: Path) -> tuple[str, str]:
    """Text of a bar file (zip member, gzip or plain) and the sha256 of the file's bytes."""
    if not path.exists():
        raise BqxUserError(f"no such file: {path}")
    if path.is_dir():
        raise BqxUserError(f"{path} is a directory; pass the files or use a glob")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".txt"))]
                csvs = [n for n in members if n.lower().endswith(".csv")] or members
                if not csvs:
                    raise BqxUserError(f"{path}: zip holds no .csv file")
                raw = archive.read(csvs[0])
        elif data[:2] == b"\x1f\x8b":
            raw = gzip.decompress(data)
        else:
            raw = data
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise BqxUserError(f"{path}: cannot read the file ({err})") from err
    return raw.decode("utf-8", errors="replace"), digest


def detect_format(first_line: str) -> str:
    line = first_line.strip().lstrip("\ufeff")
    if _HISTDATA_LINE.match(line):
        return "histdata"
    if "ts_utc" in [c.strip().lower() for c in line.split(",")]:
        return "generic"
    raise BqxUserError(
        "unknown file format: expected HistData ASCII M1 (`YYYYMMDD HHMMSS;o;h;l;c;v`) "
        f"or a CSV with header ts_utc,open,high,low,close,volume; first line was {line[:60]!r}"
    )


def parse_file(
    path: Path, *, file_format: str = "auto", pair: str | None = None, tz: str | None = None
) -> ParsedFile:
    """Parse and validate one bar file. `pair` overrides the name; `tz` overrides the clock."""
    if file_format not in FORMATS:
        raise BqxUserError(f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}")
    file_pair = validate_pair(pair) if pair else pair_from_file_name(path)
    text, digest = read_text(path)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise BqxUserError(f"{path}: the file is empty")
    fmt = detect_format(first) if file_format == "auto" else file_format

    if fmt == "histdata":
        frame = _parse_histdata(lines, tz or HISTDATA_TZ)
    else:
        frame = _parse_generic(lines, tz or "UTC")
    if "pair" not in frame:
        if file_pair is None:
            raise BqxUserError(
                f"cannot tell the pair of {path.name}: name the file after it "
                "(EURUSD.csv.gz) or pass --pair"
            )
        frame["pair"] = file_pair
    bars, duplicates, rejected = _validate(frame)
    rows_read = int(len(frame))
    return ParsedFile(path.name, digest, fmt, rows_read, bars, duplicates, rejected)


def _numbered(lines: list[str], skip_header: bool) -> pd.DataFrame:
    """Non-blank lines with their 1-based line numbers in the file."""
    start = 1 if skip_header else 0
    numbered = [(i + 1, line) for i, line in enumerate(lines[start:], start=start) if line.strip()]
    if not numbered:
        return pd.DataFrame({"line_no": pd.Series(dtype="int64"), "raw_line": pd.Series(dtype=str)})
    line_no, raw = zip(*numbered, strict=True)
    return pd.DataFrame({"line_no": np.asarray(line_no, dtype="int64"), "raw_line": list(raw)})


def _split(frame: pd.DataFrame, sep: str, names: list[str]) -> pd.DataFrame:
    """Split raw lines into named string columns; wrong field counts become all-NaN rows."""
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=str) for name in names})
    stripped = frame["raw_line"].str.strip().str.rstrip("\r")
    ok = stripped.str.count(re.escape(sep)) == len(names) - 1
    parts = stripped.where(ok, other=sep.join([""] * len(names))).str.split(sep, expand=True)
    if parts.shape[1] != len(names):  # every line malformed
        parts = pd.DataFrame({i: [""] * len(frame) for i in range(len(names))}, index=frame.index)
    parts.columns = names
    return parts.apply(lambda col: col.str.strip())


def _to_float(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col.replace("", np.nan), errors="coerce").astype("float64")


def _localize(naive: pd.Series, tz: str) -> tuple[pd.Series, pd.Series]:
    """Local wall-clock → UTC; returns (utc, is_nonexistent_or_ambiguous)."""
    try:
        local = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    except Exception as err:  # zoneinfo raises several types for a bad name
        raise BqxUserError(f"unknown time zone {tz!r}") from err
    utc = local.dt.tz_convert("UTC")
    return utc, naive.notna() & utc.isna()


def _parse_histdata(lines: list[str], tz: str) -> pd.DataFrame:
    frame = _numbered(lines, skip_header=False)
    parts = _split(frame, ";", ["ts", "open", "high", "low", "close", "volume"])
    naive = pd.to_datetime(parts["ts"], format="%Y%m%d %H%M%S", errors="coerce")
    frame["ts_utc"], frame["bad_local_time"] = _localize(naive, tz)
    for col in [*PRICE_COLUMNS, "volume"]:
        frame[col] = _to_float(parts[col])
    return frame


def _parse_generic(lines: list[str], tz: str) -> pd.DataFrame:
    header = [c.strip().lower() for c in lines[0].lstrip("\ufeff").split(",")]
    missing = [c for c in GENERIC_REQUIRED if c not in header]
    if missing:
        raise BqxUserError(f"CSV header lacks column(s) {', '.join(missing)}: got {lines[0]!r}")
    frame = _numbered(lines, skip_header=True)
    parts = _split(frame, ",", header)
    stamp = parts["ts_utc"].str.replace("T", " ", regex=False).str.rstrip("Z")
    naive = pd.to_datetime(stamp, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    frame["ts_utc"], frame["bad_local_time"] = _localize(naive, tz)
    for col in PRICE_COLUMNS:
        frame[col] = _to_float(parts[col])
    frame["volume"] = _to_float(parts["volume"]) if "volume" in header else 0.0
    if "pair" in header:
        frame["pair"] = parts["pair"].str.upper()
    return frame


def _validate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """Assign each line one reason (first that applies) or accept it."""
    prices = frame[PRICE_COLUMNS]
    unparseable = frame["ts_utc"].isna() & ~frame["bad_local_time"]
    unparseable |= prices.isna().any(axis=1) | frame["volume"].isna()
    unparseable |= frame["ts_utc"].dt.second.fillna(0).ne(0)
    checks = [
        (UNPARSEABLE, unparseable),
        (NONEXISTENT_LOCAL_TIME, frame["bad_local_time"]),
        (UNKNOWN_PAIR, ~frame["pair"].isin(PAIRS)),
        (NON_POSITIVE_PRICE, (prices <= 0).any(axis=1)),
        (HIGH_BELOW_LOW, frame["high"] < frame["low"]),
        (
            OPEN_CLOSE_OUTSIDE_RANGE,
            (frame[["open", "close"]].max(axis=1) > frame["high"])
            | (frame[["open", "close"]].min(axis=1) < frame["low"]),
        ),
    ]
    reason = pd.Series(pd.NA, index=frame.index, dtype="object")
    for name, mask in checks:
        reason = reason.mask(reason.isna() & mask.fillna(False).astype(bool), name)

    good = frame[reason.isna()]
    # The first line for a (pair, minute) wins; an identical repeat is a harmless duplicate,
    # a repeat with other values is a conflict and goes to quarantine.
    first = good.drop_duplicates(["pair", "ts_utc"], keep="first")
    repeats = good[good.duplicated(["pair", "ts_utc"], keep="first")]
    compared = repeats.merge(
        first[["pair", "ts_utc", *PRICE_COLUMNS, "volume"]],
        on=["pair", "ts_utc"],
        suffixes=("", "_first"),
    )
    same = np.ones(len(compared), dtype=bool)
    for col in [*PRICE_COLUMNS, "volume"]:
        same &= (compared[col] == compared[f"{col}_first"]).to_numpy()
    conflicts = compared.loc[~same, ["pair", "line_no", "raw_line"]].assign(
        reason=DUPLICATE_CONFLICT
    )
    rejected = pd.concat(
        [
            frame.loc[reason.notna(), ["pair", "line_no", "raw_line"]].assign(
                reason=reason[reason.notna()]
            ),
            conflicts,
        ],
        ignore_index=True,
    ).sort_values("line_no", ignore_index=True)
    bars = first[[*BAR_COLUMNS, "line_no", "raw_line"]].reset_index(drop=True)
    return bars, int(same.sum()), rejected
