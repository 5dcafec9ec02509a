"""Parse and validate a chunk of bar lines, vectorised, with the quarantine rules of the door.

Each line gets one reason (the first that applies, in the order of REASONS) or is accepted.
Nothing is dropped silently; blank lines are skipped but keep their line numbers.

Two paths give the same rows and reasons, and only the speed differs:
- fast: pyarrow's CSV reader (no quoting, typed floats, the stamp as a string) on a chunk of
  printable-ASCII lines, then the stamps decoded from their fixed-width digits with numpy.
  It accepts a chunk only when every line has the right field count, every number parses
  as a finite float and every stamp is a valid `YYYY-MM-DD HH:MM:SS` (HistData:
  `YYYYMMDD HHMMSS`) between 1900 and 2199; those are the inputs on which pyarrow, numpy and
  the careful path's pandas agree bit for bit (checked on all 28 real files). What is left to
  decide per row is value-based (seconds, DST gap, pair, price checks) and shared with the
  careful path (`_reasons`). The 371,635 bars of a real pair file: 0.18 s of CPU, where the
  line-by-line pandas rules (the careful path, and the whole parser before) take 2.2 s.
- careful: any other chunk is split in halves until the pieces parse fast or hold at most
  CAREFUL_LINES lines, which go through the line-by-line pandas rules (`str.splitlines`,
  field split and strip, `to_numeric`, `to_datetime` with the exact format): a bad line costs
  the speed of its neighbourhood only, and what it means is defined here, once.
Local wall-clock stamps (HistData's New York clock, or `--tz`) become UTC with pandas'
`tz_localize`: a stamp in the spring-forward gap is quarantined as nonexistent_local_time, one
in the repeated autumn hour (New York 2017-11-05 01:xx) as ambiguous_local_time.
Beyond parsing, the door (`_reasons`, settings in bqx.config.BarRules): finite prices and
volume, a minute inside the time window (default 1990-01-01 .. now), positive prices within a
band around the pair's reference level, high >= max(open, close) >= min(open, close) >= low,
volume >= 0; and prices with no more decimals than seeds/pairs.csv gives the pair, else the
file is refused with that setting named (`_check_precision`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bqx.config import BarRules
from bqx.errors import BqxUserError
from bqx.pairs import PAIRS, PRICE_DECIMALS_SETTING, price_decimals, reference_price

HISTDATA_TZ = "America/New_York"  # clock of the 2017-2018 HistData files, DST included
PRICE_COLUMNS = ["open", "high", "low", "close"]
BAR_COLUMNS = ["pair", "ts_utc", "open", "high", "low", "close", "volume"]
REJECTED_COLUMNS = ["pair", "line_no", "raw_line", "reason"]
CAREFUL_LINES = 4096

# Reasons a line is quarantined (raw.m1_bars_rejected.reason), in order of precedence.
UNPARSEABLE = "unparseable"
NON_FINITE_VALUE = "non_finite_value"  # inf or -inf in a price or the volume
NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"  # in the spring-forward gap
AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"  # in the repeated autumn hour
OUTSIDE_TIME_WINDOW = "outside_time_window"  # BarRules.not_before .. not_after (now)
UNKNOWN_PAIR = "unknown_pair"
NON_POSITIVE_PRICE = "non_positive_price"
PRICE_OUTSIDE_BAND = "price_outside_band"  # BarRules.price_band_factor around the reference
HIGH_BELOW_LOW = "high_below_low"
OPEN_CLOSE_OUTSIDE_RANGE = "open_close_outside_range"
NEGATIVE_VOLUME = "negative_volume"
DUPLICATE_CONFLICT = "duplicate_conflict"  # decided against earlier lines and the database
REASONS = (
    UNPARSEABLE,
    NON_FINITE_VALUE,
    NONEXISTENT_LOCAL_TIME,
    AMBIGUOUS_LOCAL_TIME,
    OUTSIDE_TIME_WINDOW,
    UNKNOWN_PAIR,
    NON_POSITIVE_PRICE,
    PRICE_OUTSIDE_BAND,
    HIGH_BELOW_LOW,
    OPEN_CLOSE_OUTSIDE_RANGE,
    NEGATIVE_VOLUME,
)
# stamps pandas can localize; others are kept as UTC-naive seconds (and fall outside the window)
_LOCALIZABLE_YEARS = (1900, 2199)

# bytes a fast chunk may hold: printable ASCII, tab, \n, and \r only as part of \r\n
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r"
# fixed-width stamps: (year, month, day, hour, minute, second) digit slices, separators
_STAMPS = {
    "generic": (19, (0, 5, 8, 11, 14, 17), ((4, b"-"), (7, b"-"), (10, b" T"), (13, b":"))),
    "histdata": (15, (0, 4, 6, 9, 11, 13), ((8, b" "),)),
}
_STAMP_FORMATS = {"generic": "%Y-%m-%d %H:%M:%S", "histdata": "%Y%m%d %H%M%S"}


@dataclass(frozen=True)
class Layout:
    """What the lines of a file hold: format, separator, column names, clock, the file's pair."""

    file_format: str  # "generic" or "histdata"
    sep: str
    names: list[str]
    tz: str
    file_pair: str | None
    window_us: tuple[int, int] = field(default_factory=lambda: BarRules().window_us())
    price_band_factor: float = BarRules.price_band_factor

    @property
    def ts_column(self) -> str:
        return "ts" if self.file_format == "histdata" else "ts_utc"

    @property
    def has_pair_column(self) -> bool:
        return self.file_format == "generic" and "pair" in self.names

    @property
    def has_volume(self) -> bool:
        return "volume" in self.names


@dataclass(frozen=True)
class TextChunk:
    """Whole lines of a file's text; the first is line `first_line_no`; the first
    `skip_lines` lines are not bars (the generic CSV's header)."""

    first_line_no: int
    data: bytes
    skip_lines: int = 0

    @cached_property
    def is_plain(self) -> bool:
        """Printable ASCII, tab, and \\n or \\r\\n line ends: lines are what pyarrow sees."""
        data = self.data
        if data.translate(None, _PLAIN_BYTES):
            return False
        return b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")

    @cached_property
    def line_count(self) -> int:
        if self.is_plain:
            return self.data.count(b"\n") + (not self.data.endswith(b"\n"))
        return len(self.lines)

    @cached_property
    def lines(self) -> list[str]:
        """The lines as `str.splitlines` of the whole file's text gives them; a NUL byte (which
        PostgreSQL text cannot hold) reads as the four characters `\\x00`."""
        text = self.data.decode("utf-8", errors="replace").replace("\x00", "\\x00")
        return text.splitlines()

    def halves(self) -> list[TextChunk]:
        """Two chunks cut at the newline nearest the middle (one when there is none)."""
        data, middle = self.data, len(self.data) // 2
        cut = data.find(b"\n", middle) + 1
        if cut in (0, len(data)):
            cut = data.rfind(b"\n", 0, middle) + 1
        if cut in (0, len(data)):
            return [self]
        head = TextChunk(self.first_line_no, data[:cut], self.skip_lines)
        tail_skip = max(0, self.skip_lines - head.line_count)
        tail = TextChunk(self.first_line_no + head.line_count, data[cut:], tail_skip)
        return [head, tail]


@dataclass
class Rows:
    """Parsed lines as columns, before or after validation."""

    line_no: np.ndarray  # int64
    pair: np.ndarray  # object (str)
    utc_us: np.ndarray  # int64 microseconds since 1970 UTC; meaningless where not ts_ok
    ts_ok: np.ndarray  # bool: the stamp parsed and is a real instant
    bad_local: np.ndarray  # bool: the stamp parsed but its local time does not exist
    ambiguous: np.ndarray  # bool: bad_local because the local time happens twice
    prices: np.ndarray  # float64 (n, 4): open, high, low, close
    volume: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.line_no)

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(*(getattr(self, name)[mask] for name in _ROW_FIELDS))

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        if len(parts) == 1:
            return parts[0]
        return Rows(*(np.concatenate([getattr(p, n) for p in parts]) for n in _ROW_FIELDS))


_ROW_FIELDS = ("line_no", "pair", "utc_us", "ts_ok", "bad_local", "ambiguous", "prices", "volume")


@dataclass
class ParsedChunk:
    """A chunk after validation: its good bars (in line order) and its rejected lines."""

    chunk: TextChunk
    rows_read: int  # non-blank bar lines
    bars: Rows
    rejected: pd.DataFrame = field(repr=False)  # REJECTED_COLUMNS

    def bars_frame(self, with_raw_lines: bool = False) -> pd.DataFrame:
        """The good bars as a frame: BAR_COLUMNS + line_no (+ raw_line)."""
        bars = self.bars
        frame = pd.DataFrame(
            {
                "pair": pd.Series(bars.pair, dtype=str),
                "ts_utc": pd.to_datetime(bars.utc_us, unit="us", utc=True),
                **{col: bars.prices[:, i] for i, col in enumerate(PRICE_COLUMNS)},
                "volume": bars.volume,
                "line_no": bars.line_no,
            }
        )
        if with_raw_lines:
            frame["raw_line"] = pd.Series(self.raw_lines(bars.line_no), dtype=str)
        return frame

    def raw_lines(self, line_no: np.ndarray) -> list[str]:
        lines, first = self.chunk.lines, self.chunk.first_line_no
        return [lines[n - first] for n in line_no.tolist()]


def parse_chunk(chunk: TextChunk, layout: Layout) -> ParsedChunk:
    """Parse and validate a chunk: fast when it is clean, careful line by line where not."""
    pieces = _clean_pieces(chunk, layout)
    rows = Rows.concat([r if r is not None else _careful_rows(c, layout) for c, r in pieces])
    codes = _reasons(rows, layout)
    good = codes == 0
    bad = ~good
    rejected = pd.DataFrame(
        {
            "pair": pd.Series(rows.pair[bad], dtype=str),
            "line_no": rows.line_no[bad],
            "raw_line": pd.Series(dtype=str),
            "reason": pd.Series(np.asarray(REASONS, dtype=object)[codes[bad] - 1], dtype=str),
        }
    )
    parsed = ParsedChunk(chunk, len(rows), rows.take(good), rejected)
    if bad.any():
        rejected["raw_line"] = pd.Series(parsed.raw_lines(rows.line_no[bad]), dtype=str)
    _check_precision(parsed)
    return parsed


class PrecisionError(BqxUserError):
    """Prices with more decimals than the pair's price_decimals: a setting, not a bad line."""


def _check_precision(parsed: ParsedChunk) -> None:
    """Refuse good bars whose prices need more decimals than seeds/pairs.csv gives their pair.

    The features work on exact integer prices (close × 10^price_decimals); a vendor quoting
    one decimal more (mid prices) would fail dbt's price_units_are_exact test at build time,
    on every bar. Caught here, at ingest, with the setting to change. Vectorised: about 10 ms
    for a real pair file's 371,635 bars.
    """
    bars = parsed.bars
    if not len(bars):
        return
    codes, pairs = pd.factorize(bars.pair)
    scale = 10.0 ** np.array([price_decimals(p) for p in pairs])[codes]
    units = bars.prices * scale[:, None]
    excess = (np.abs(units - np.round(units)) > 1e-9 * units).any(axis=1)
    if not excess.any():
        return
    first = int(np.argmax(excess))
    pair = str(bars.pair[first])
    line = parsed.raw_lines(bars.line_no[first : first + 1])[0]
    raise PrecisionError(
        f"line {bars.line_no[first]} ({line.strip()[:60]!r}) and {int(excess.sum()) - 1} more: "
        f"{pair} prices have more than {price_decimals(pair)} decimals; raise {pair}'s "
        f"{PRICE_DECIMALS_SETTING} to the vendor's precision and ingest again"
    )


def _clean_pieces(chunk: TextChunk, layout: Layout) -> list[tuple[TextChunk, Rows | None]]:
    """The chunk as pieces with their fast-parsed rows, or None where the careful path must
    decide (bisected down to CAREFUL_LINES lines)."""
    rows = _fast_rows(chunk, layout)
    if rows is not None or chunk.line_count <= CAREFUL_LINES:
        return [(chunk, rows)]
    halves = chunk.halves()
    if len(halves) == 1:
        return [(chunk, None)]
    return [piece for half in halves for piece in _clean_pieces(half, layout)]


def _reasons(rows: Rows, layout: Layout) -> np.ndarray:
    """Per row, 0 (a good bar) or 1 + the index in REASONS of the first rule it breaks."""
    prices = rows.prices
    o, h, low, c = prices.T
    second = np.where(rows.ts_ok, (rows.utc_us // 1_000_000) % 60, 0)
    unparseable = (~rows.ts_ok & ~rows.bad_local) | np.isnan(prices).any(axis=1)
    unparseable |= np.isnan(rows.volume) | (second != 0)
    known = pd.Series(rows.pair, dtype=object).isin(PAIRS).to_numpy()
    first_us, last_us = layout.window_us
    with np.errstate(invalid="ignore", over="ignore"):
        checks = [
            unparseable,
            np.isinf(prices).any(axis=1) | np.isinf(rows.volume),
            rows.bad_local & ~rows.ambiguous,
            rows.ambiguous,
            rows.ts_ok & ((rows.utc_us < first_us) | (rows.utc_us > last_us)),
            ~known,
            (prices <= 0).any(axis=1),
            _outside_band(rows.pair, known, prices, layout.price_band_factor),
            h < low,
            (np.maximum(o, c) > h) | (np.minimum(o, c) < low),
            rows.volume < 0,
        ]
    return np.select(checks, np.arange(1, len(REASONS) + 1, dtype=np.int8), 0).astype(np.int8)


def _outside_band(
    pair: np.ndarray, known: np.ndarray, prices: np.ndarray, factor: float
) -> np.ndarray:
    """A price of a known pair outside [reference / factor, reference × factor]."""
    codes, names = pd.factorize(np.where(known, pair, PAIRS[0]))
    reference = np.array([reference_price(p) for p in names], dtype=np.float64)[codes]
    ratio = prices / reference[:, None]
    return known & ((ratio < 1 / factor) | (ratio > factor)).any(axis=1)


# --- fast path ---------------------------------------------------------------------------


def _fast_rows(chunk: TextChunk, layout: Layout) -> Rows | None:
    """Rows of a clean chunk, or None when any line needs the careful path."""
    if not chunk.is_plain:
        return None
    data, first = chunk.data, chunk.first_line_no
    for _ in range(chunk.skip_lines):
        cut = data.find(b"\n") + 1 or len(data)
        data, first = data[cut:], first + 1
    n = chunk.line_count - (first - chunk.first_line_no)
    if n == 0:
        return _empty_rows()
    numbers = [*PRICE_COLUMNS, *(["volume"] if layout.has_volume else [])]
    texts = [layout.ts_column, *(["pair"] if layout.has_pair_column else [])]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            # pyarrow's own threads can abort the interpreter at exit (apache/arrow#34314;
            # seen here in 1 of 6 runs); chunks are parsed in the loader's worker thread anyway
            read_options=pacsv.ReadOptions(column_names=layout.names, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=layout.sep, quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    **dict.fromkeys(numbers, pa.float64()),
                    **dict.fromkeys(texts, pa.string()),
                },
                include_columns=numbers + texts,
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows != n:  # a blank line was skipped
        return None
    values = {}
    for name in numbers:
        column = table[name]
        values[name] = column.to_numpy()
        if column.null_count or not np.isfinite(values[name]).all():
            return None
    naive = _fixed_stamps(table[layout.ts_column].combine_chunks(), layout.file_format)
    if naive is None:
        return None
    utc_us, bad_local, ambiguous = _to_utc(naive.astype("datetime64[s]"), layout.tz)
    if layout.has_pair_column:
        pair_text = pc.ascii_upper(pc.ascii_trim_whitespace(table["pair"]))
        pair = pair_text.to_numpy().astype(object)
    else:
        pair = np.full(n, layout.file_pair, dtype=object)
    return Rows(
        line_no=np.arange(first, first + n, dtype=np.int64),
        pair=pair,
        utc_us=utc_us,
        ts_ok=~bad_local,
        bad_local=bad_local,
        ambiguous=ambiguous,
        prices=np.column_stack([values[c] for c in PRICE_COLUMNS]),
        volume=values["volume"] if layout.has_volume else np.zeros(n),
    )


def _fixed_stamps(stamps: pa.StringArray, file_format: str) -> np.ndarray | None:
    """Seconds since 1970 of wall-clock stamps in the format's fixed width, or None unless
    every stamp has exactly that shape and is a valid time of 1900-2199."""
    width, starts, separators = _STAMPS[file_format]
    n = len(stamps)
    if stamps.null_count:
        return None
    offsets = np.frombuffer(
        stamps.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * stamps.offset
    )
    if not (np.diff(offsets) == width).all():
        return None
    text = np.frombuffer(stamps.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    text = text.reshape(n, width)
    for position, allowed in separators:
        if not np.isin(text[:, position], np.frombuffer(allowed, dtype=np.uint8)).all():
            return None
    digit_at = [
        s + k for s, size in zip(starts, (4, 2, 2, 2, 2, 2), strict=True) for k in range(size)
    ]
    digits = text[:, digit_at].astype(np.int64) - ord("0")
    if ((digits < 0) | (digits > 9)).any():
        return None
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month, day, hour, minute, second = (
        digits[:, k] * 10 + digits[:, k + 1] for k in range(4, 14, 2)
    )
    valid = (year >= 1900) & (year <= 2199) & (month >= 1) & (month <= 12) & (day >= 1)
    valid &= (hour <= 23) & (minute <= 59) & (second <= 59)
    if not valid.all():
        return None
    month_start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    first_day = month_start.astype("datetime64[D]").astype(np.int64)
    days_in_month = (month_start + 1).astype("datetime64[D]").astype(np.int64) - first_day
    if (day > days_in_month).any():
        return None
    return (first_day + day - 1) * 86400 + hour * 3600 + minute * 60 + second


def _to_utc(naive: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wall-clock stamps in `tz` (datetime64[s], NaT allowed) → (UTC microseconds, the local
    time does not exist or is ambiguous, it is ambiguous). Both paths call this: one meaning.
    Stamps of years pandas cannot localize (9999) are kept as if UTC: outside any window."""
    n = len(naive)
    seconds = naive.astype(np.int64)
    no_fault = np.zeros(n, dtype=bool)
    utc_us = np.where(np.isnat(naive), 0, seconds * 1_000_000)
    if tz == "UTC":
        return utc_us, no_fault, no_fault
    years = naive.astype("datetime64[Y]").astype(np.int64) + 1970
    inside = ~np.isnat(naive) & (years >= _LOCALIZABLE_YEARS[0]) & (years <= _LOCALIZABLE_YEARS[1])
    index = pd.DatetimeIndex(naive[inside])
    local = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    missing = np.asarray(local.isna())
    utc_us[inside] = np.where(missing, 0, local.as_unit("us").asi8)
    bad_local, ambiguous = no_fault.copy(), no_fault.copy()
    bad_local[inside] = missing
    if missing.any():  # few rows: which of them are the repeated hour rather than the gap
        forward = index[missing].tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        at = np.flatnonzero(inside)[missing]
        ambiguous[at] = np.asarray(forward.isna())
    return utc_us, bad_local, ambiguous


def _empty_rows() -> Rows:
    empty_bool = np.zeros(0, dtype=bool)
    return Rows(
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=object),
        np.zeros(0, dtype=np.int64),
        empty_bool,
        empty_bool,
        empty_bool,
        np.zeros((0, 4)),
        np.zeros(0),
    )


# --- careful path --------------------------------------------------------------------------


def _careful_rows(chunk: TextChunk, layout: Layout) -> Rows:
    """Rows of any chunk, line by line with pandas: the rules' reference semantics."""
    first = chunk.first_line_no
    numbered = [
        (first + i, line)
        for i, line in enumerate(chunk.lines)
        if i >= chunk.skip_lines and line.strip()
    ]
    if not numbered:
        return _empty_rows()
    line_no, raw = zip(*numbered, strict=True)
    parts = _split(pd.Series(raw, dtype=str), layout.sep, layout.names)
    if layout.file_format == "histdata":
        stamp = parts["ts"]
    else:
        stamp = parts["ts_utc"].str.replace("T", " ", regex=False).str.rstrip("Z")
    naive = pd.to_datetime(stamp, format=_STAMP_FORMATS[layout.file_format], errors="coerce")
    naive_s = naive.to_numpy(dtype="datetime64[s]")
    utc_us, bad_local, ambiguous = _to_utc(naive_s, layout.tz)
    n = len(parts)
    if layout.has_pair_column:
        pair = parts["pair"].str.upper().to_numpy(dtype=object)
    else:
        pair = np.full(n, layout.file_pair, dtype=object)
    return Rows(
        line_no=np.asarray(line_no, dtype=np.int64),
        pair=pair,
        utc_us=utc_us,
        ts_ok=~np.isnat(naive_s) & ~bad_local,
        bad_local=bad_local,
        ambiguous=ambiguous,
        prices=np.column_stack([_to_float(parts[c]) for c in PRICE_COLUMNS]),
        volume=_to_float(parts["volume"]) if layout.has_volume else np.zeros(n),
    )


def _split(lines: pd.Series, sep: str, names: list[str]) -> pd.DataFrame:
    """Split raw lines into named string columns; wrong field counts become all-empty rows."""
    stripped = lines.str.strip().str.rstrip("\r")
    ok = stripped.str.count(re.escape(sep)) == len(names) - 1
    parts = stripped.where(ok, other=sep.join([""] * len(names))).str.split(sep, expand=True)
    if parts.shape[1] != len(names):  # every line malformed
        parts = pd.DataFrame({i: [""] * len(lines) for i in range(len(names))}, index=lines.index)
    parts.columns = names
    return parts.apply(lambda col: col.str.strip())


def _to_float(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col.replace("", np.nan), errors="coerce").to_numpy(dtype="float64")
