"""PostgreSQL's binary COPY format for columns of fixed width, built by numpy in one pass.

Why binary: the server reads a float8 or a timestamptz from 8 bytes instead of parsing
decimal text, and numpy lays out all rows at once with no per-row Python. For the 371,635
bars of a real pair file: 0.06 s of CPU to build 37.5 MB here, COPY of it into an unindexed
temp table 0.17 s, where the pandas `to_csv` the loader used before took about 1 s alone.

Every field is fixed width per call: float8 and int4/int8 arrays (a timestamptz is int64
microseconds since 2000 UTC: `timestamptz`), and text as a numpy bytes array whose values all
have the array's width (pair codes) or as one bytes value for every row (the file name).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import psycopg2.extensions

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in microseconds since 1970


def timestamptz(utc_us: np.ndarray) -> np.ndarray:
    """A timestamptz field's int64 values from microseconds since 1970 UTC."""
    return np.asarray(utc_us, dtype=np.int64) - PG_EPOCH_US


def encode(n: int, fields: Sequence[np.ndarray | bytes]) -> bytes:
    """The COPY ... (FORMAT binary) payload of `n` rows with these fields, in column order."""
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for i, values in enumerate(fields):
        layout += [(f"len{i}", ">i4"), (f"f{i}", _wire_type(values))]
    rows = np.empty(n, dtype=np.dtype(layout))
    rows["count"] = len(fields)
    for i, values in enumerate(fields):
        rows[f"len{i}"] = rows.dtype[f"f{i}"].itemsize
        rows[f"f{i}"] = values
    return b"".join([HEADER, rows.view(np.uint8), TRAILER])


def _wire_type(values: np.ndarray | bytes) -> str:
    if isinstance(values, bytes):
        return f"S{len(values)}"
    kind = np.asarray(values).dtype
    if kind == np.int64:
        return ">i8"
    if kind == np.float64:
        return ">f8"
    if kind == np.int32:
        return ">i4"
    if kind.kind == "S":
        return f"S{kind.itemsize}"
    raise TypeError(f"no binary COPY encoding for {kind}")


def copy_rows(
    cur: psycopg2.extensions.cursor, table: str, columns: list[str], payload: bytes, binary: bool
) -> None:
    """COPY a payload (binary, or CSV without header) into a table."""
    fmt = "binary" if binary else "csv"
    cur.copy_expert(
        f"copy {table} ({', '.join(columns)}) from stdin with (format {fmt})",
        io.BytesIO(payload),
        size=1 << 20,
    )
