"""Open 1-minute bar files (HistData ASCII M1 zip or csv, the generic CSV) and stream their
text in chunks of whole lines, so memory stays bounded for any file size.

A file is read in passes: its bytes hashed (sha256 keys the quarantine; about 15 ms for a
6 MB gzip), its first lines to tell the format, then its text through a streaming
decompressor, cut at newline bytes into chunks of about `CHUNK_BYTES` (2 MiB ≈ 37,000 bars),
each with the number of its first line. Line numbers follow `str.splitlines` on the whole
text, as they always have: a chunk is cut only right after a `\\n`, so no line ending is
split, and a chunk holding another line separator is counted by `splitlines` itself
(bar_rows.py sends such a chunk down its careful path).

Memory: one gzip CSV of all 28 real files (10.4 M lines with a pair column, 122 MB) loaded
in 43.6 s at load 6 with a peak RSS of 172 MB, 53 MB above the interpreter's own.

`parse_file` is the whole-file view (all bars and rejected lines as frames) the parquet target
uses; `bqx ingest` into PostgreSQL streams chunks instead (loader.py).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from bqx.config import BarRules
from bqx.errors import BqxUserError
from bqx.ingest.bar_rows import (
    BAR_COLUMNS,
    DUPLICATE_CONFLICT,
    HISTDATA_TZ,
    PRICE_COLUMNS,
    Layout,
    ParsedChunk,
    PrecisionError,
    TextChunk,
    parse_chunk,
)
from bqx.pairs import PAIRS, validate_pair

FORMATS = ("auto", "generic", "histdata")
GENERIC_REQUIRED = ("ts_utc", "open", "high", "low", "close")
CHUNK_BYTES = 2 << 20
READ_BYTES = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"

_HISTDATA_LINE = re.compile(r"^\d{8} \d{6};")
_PAIR_IN_NAME = re.compile(r"(?<![A-Z])([A-Z]{6})(?![A-Z])")


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


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes; a missing file or a directory is a user error."""
    if not path.exists():
        raise BqxUserError(f"no such file: {path}")
    if path.is_dir():
        raise BqxUserError(f"{path} is a directory; pass the files or use a glob")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _open_text_stream(path: Path) -> IO[bytes]:
    """The bar text of a file as a byte stream: a zip's one .csv member (else its one .txt; a
    HistData zip holds the bars' .csv and a .txt gap report), gzip or plain bytes. A zip with
    two bar members is refused rather than half loaded."""
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".txt"))]
        csvs = [n for n in members if n.lower().endswith(".csv")] or members
        if not csvs:
            raise BqxUserError(f"{path}: zip holds no .csv file")
        if len(csvs) > 1:
            raise BqxUserError(
                f"{path}: zip holds {len(csvs)} bar files ({', '.join(csvs)}); one file per zip "
                "is loaded: unzip it and ingest the files"
            )
        return archive.open(csvs[0])
    with path.open("rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def _byte_chunks(path: Path, size: int) -> Iterator[bytes]:
    """The decompressed text in pieces of about `size` bytes, each ending right after a
    newline (the last one possibly not)."""
    try:
        with _open_text_stream(path) as stream:
            rest = b""
            block = stream.read(size)
            if block.startswith(UTF8_BOM):  # not part of the first line (nor the first bar)
                block = block[len(UTF8_BOM) :]
            while block:
                data = rest + block
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                rest = data[cut:]
                block = stream.read(size)
            if rest:
                yield rest
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise BqxUserError(f"{path}: cannot read the file ({err})") from err


@dataclass
class BarFile:
    """An opened bar file: what it is (format, pair, clock, columns) and its text, in chunks."""

    path: Path
    sha256: str
    layout: Layout
    header_lines: int  # lines before the first bar line (the generic CSV's header)
    stat: tuple[int, int]  # size and mtime when hashed

    def check_unchanged(self) -> None:
        """The file is read more than once: refuse one that changed meanwhile."""
        if _stat(self.path) != self.stat:
            raise BqxUserError(f"{self.path} changed while it was being ingested")

    @property
    def source(self) -> str:  # file name, as recorded in raw.m1_bars.source
        return self.path.name

    def parsed_chunks(self, size: int | None = None) -> Iterator[ParsedChunk]:
        """The chunks parsed and validated; a precision error names the file."""
        for chunk in self.chunks(size):
            try:
                yield parse_chunk(chunk, self.layout)
            except PrecisionError as err:
                raise PrecisionError(f"{self.path.name}: {err}") from None

    def chunks(self, size: int | None = None) -> Iterator[TextChunk]:
        """The bar lines in chunks of whole lines, numbered from 1 as in the file."""
        line_no, skip = 1, self.header_lines
        for data in _byte_chunks(self.path, size or CHUNK_BYTES):
            chunk = TextChunk(line_no, data, skip)
            yield chunk
            line_no, skip = line_no + chunk.line_count, 0


def _first_lines(path: Path) -> tuple[str | None, str | None]:
    """The file's first physical line and its first non-blank line (None when all blank)."""
    first = None
    for data in _byte_chunks(path, READ_BYTES):
        lines = data.decode("utf-8", errors="replace").splitlines()
        if first is None and lines:
            first = lines[0]
        for line in lines:
            if line.strip():
                return first, line
    return first, None


def open_bar_file(
    path: Path,
    *,
    file_format: str = "auto",
    pair: str | None = None,
    tz: str | None = None,
    rules: BarRules | None = None,
) -> BarFile:
    """Check a bar file and tell its layout. `pair` overrides the name; `tz` overrides the
    clock (HistData: America/New_York, generic: UTC); `rules` the door (default BarRules(),
    its open time window ending now)."""
    rules = rules or BarRules()
    door = {"window_us": rules.window_us(), "price_band_factor": rules.price_band_factor}
    if file_format not in FORMATS:
        raise BqxUserError(f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}")
    file_pair = validate_pair(pair) if pair else pair_from_file_name(path)
    digest = file_sha256(path)
    stat = _stat(path)
    header, first = _first_lines(path)
    if first is None or header is None:
        raise BqxUserError(f"{path}: the file is empty")
    fmt = detect_format(first) if file_format == "auto" else file_format
    if fmt == "histdata":
        names = ["ts", "open", "high", "low", "close", "volume"]
        layout = Layout("histdata", ";", names, _check_tz(tz or HISTDATA_TZ), file_pair, **door)
        header_lines = 0
    else:
        names = [c.strip().lower() for c in header.lstrip("\ufeff").split(",")]
        missing = [c for c in GENERIC_REQUIRED if c not in names]
        if missing:
            raise BqxUserError(f"CSV header lacks column(s) {', '.join(missing)}: got {header!r}")
        layout = Layout("generic", ",", names, _check_tz(tz or "UTC"), file_pair, **door)
        header_lines = 1
    if not layout.has_pair_column and file_pair is None:
        raise BqxUserError(
            f"cannot tell the pair of {path.name}: name the file after it "
            "(EURUSD.csv.gz) or pass --pair"
        )
    return BarFile(path, digest, layout, header_lines, stat)


def _stat(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _check_tz(tz: str) -> str:
    try:
        pd.DatetimeIndex([], dtype="datetime64[s]").tz_localize(tz)
    except Exception as err:  # zoneinfo raises several types for a bad name
        raise BqxUserError(f"unknown time zone {tz!r}") from err
    return tz


@dataclass
class ParsedFile:
    """A whole bar file after parsing and validation, before loading (the parquet target)."""

    source: str  # file name, as recorded in raw.m1_bars.source
    sha256: str
    file_format: str
    rows_read: int
    bars: pd.DataFrame  # BAR_COLUMNS + line_no, raw_line; unique (pair, ts_utc)
    duplicates_in_file: int  # identical repeats of an earlier line, skipped
    rejected: pd.DataFrame  # pair, line_no, raw_line, reason


def parse_file(
    path: Path,
    *,
    file_format: str = "auto",
    pair: str | None = None,
    tz: str | None = None,
    rules: BarRules | None = None,
) -> ParsedFile:
    """Parse and validate one bar file into frames. `pair` overrides the name; `tz` the clock;
    `rules` the door."""
    bar_file = open_bar_file(path, file_format=file_format, pair=pair, tz=tz, rules=rules)
    bars, rejected, rows_read = [], [], 0
    for parsed in bar_file.parsed_chunks():
        rows_read += parsed.rows_read
        bars.append(parsed.bars_frame(with_raw_lines=True))
        rejected.append(parsed.rejected)
    good = pd.concat(bars, ignore_index=True) if bars else _empty_bars()
    first, duplicates, conflicts = _dedupe(good)
    quarantine = [r for r in [*rejected, conflicts] if len(r)]
    rejected_frame = (
        pd.concat(quarantine, ignore_index=True).sort_values("line_no", ignore_index=True)
        if quarantine
        else pd.DataFrame(columns=["pair", "line_no", "raw_line", "reason"])
    )
    fmt = bar_file.layout.file_format
    return ParsedFile(
        bar_file.source, bar_file.sha256, fmt, rows_read, first, duplicates, rejected_frame
    )


def _empty_bars() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in [*PRICE_COLUMNS, "volume"]})
    frame.insert(0, "pair", pd.Series(dtype=str))
    frame.insert(1, "ts_utc", pd.Series(dtype="datetime64[us, UTC]"))
    frame["line_no"] = pd.Series(dtype="int64")
    frame["raw_line"] = pd.Series(dtype=str)
    return frame


def _dedupe(good: pd.DataFrame) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """The first line for a (pair, minute) wins; an identical repeat is a harmless duplicate,
    a repeat with other values is a conflict and goes to quarantine."""
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
    bars = first[[*BAR_COLUMNS, "line_no", "raw_line"]].reset_index(drop=True)
    return bars, int(same.sum()), conflicts
