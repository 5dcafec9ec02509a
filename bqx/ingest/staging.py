"""The staged path of `bqx ingest`, for a file whose minutes are not all new and unique.

The loader first copies a file's bars straight into raw.m1_bars (loader.py says why); a
minute already there, or repeated in the file, stops that with a unique violation. The file
is then read again into the unindexed temp table `incoming_bars`, and set-based statements
apply the rules a repeat meets: the first line of a minute in the file wins, a later line
with the same values is a skipped duplicate and one with other values is quarantined as
duplicate_conflict; so is a bar that raw.m1_bars holds with other values; the rest is
inserted (`on conflict do nothing`, in case another session added the minute meanwhile).
When the file is one pair in strictly increasing time (real files are), the in-file step
(a sort of every staged row) is skipped. The staging table carries no line text, so the few
quarantined lines get theirs from one more pass over the file. Only the file's pairs and
minutes of raw.m1_bars take part (one partition for a pair file; unbounded, the join hashed
every bar of every pair). Re-ingesting a real pair file
(371,635 bars, all present): 1.1 s at load 2, 3.1 s at load 5 (bench/ingest.py), where the
loader before took about 6 s for any file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg2.extensions

from bqx.ingest import copy_binary
from bqx.ingest.bar_files import BarFile
from bqx.ingest.bar_rows import DUPLICATE_CONFLICT

STAGING_TABLE = "incoming_bars"  # pair, ts_utc, the values, line_no
REJECTED_TABLE = "incoming_rejected"  # pair, line_no, raw_line, reason
_VALUES = "({a}.open, {a}.high, {a}.low, {a}.close, {a}.volume)"


def create_staging_tables(cur: psycopg2.extensions.cursor, if_not_exists: bool = False) -> None:
    """The transaction's temp tables: staged bars and rejected lines."""
    exists = "if not exists" if if_not_exists else ""
    cur.execute(
        f"""
        create temp table {exists} {STAGING_TABLE} (
            pair text, ts_utc timestamptz, open float8, high float8, low float8,
            close float8, volume float8, line_no integer
        ) on commit drop;
        create temp table {exists} {REJECTED_TABLE} (
            pair text, line_no integer, raw_line text, reason text
        ) on commit drop;
        """
    )


@dataclass
class Span:
    """What the staged bars cover. `ordered`: one pair in strictly increasing time."""

    pairs: list[str]
    first_us: int  # microseconds since 1970 UTC
    last_us: int
    ordered: bool


def merge_staged(cur: psycopg2.extensions.cursor, source: str, span: Span) -> tuple[int, int]:
    """Set-based: the first line of each minute wins, repeats and database bars with other
    values become conflicts, the rest is inserted. Returns (loaded, duplicates)."""
    first = STAGING_TABLE
    repeats_skipped = 0
    if not span.ordered:
        first = "incoming_first"
        cur.execute(
            f"""
            create temp table incoming_first on commit drop as
            select distinct on (pair, ts_utc) *
            from {STAGING_TABLE} order by pair, ts_utc, line_no;
            select (select count(*) from {STAGING_TABLE}) - (select count(*) from incoming_first)
            """
        )
        (repeats,) = cur.fetchone()
        # a later line for a minute: an identical repeat is skipped, another value a conflict
        cur.execute(
            f"""
            insert into {REJECTED_TABLE} (pair, line_no, reason)
            select i.pair, i.line_no, %(reason)s
            from {STAGING_TABLE} as i
            join incoming_first as f on f.pair = i.pair and f.ts_utc = i.ts_utc
            where i.line_no <> f.line_no
                and {_VALUES.format(a="i")} is distinct from {_VALUES.format(a="f")}
            """,
            {"reason": DUPLICATE_CONFLICT},
        )
        repeats_skipped = repeats - cur.rowcount
    # one pass against raw.m1_bars: bars there already with other values are conflicts, not
    # silent overwrites; bars not there are inserted. The span bounds the bars looked at to
    # the file's pairs and minutes (else the join hashes every bar of every pair).
    cur.execute(
        f"""
        analyze {first};
        with matched as (
            select f.*, b.pair is not null as is_present,
                {_VALUES.format(a="b")} is distinct from {_VALUES.format(a="f")} as is_other
            from {first} as f
            left join raw.m1_bars as b on b.pair = f.pair and b.ts_utc = f.ts_utc
                and b.pair = any(%(pairs)s) and b.ts_utc between %(first)s and %(last)s
        ),
        conflicts as (
            insert into {REJECTED_TABLE} (pair, line_no, reason)
            select pair, line_no, %(reason)s from matched where is_present and is_other
            returning 1
        ),
        loaded as (
            insert into raw.m1_bars (pair, ts_utc, open, high, low, close, volume, source)
            select pair, ts_utc, open, high, low, close, volume, %(source)s
            from matched where not is_present
            on conflict (pair, ts_utc) do nothing
            returning 1
        )
        select (select count(*) from {first}), (select count(*) from conflicts),
            (select count(*) from loaded)
        """,
        {
            "reason": DUPLICATE_CONFLICT,
            "source": source,
            "pairs": span.pairs,
            "first": _instant(span.first_us),
            "last": _instant(span.last_us),
        },
    )
    winners, conflicts, loaded = cur.fetchone()
    return loaded, repeats_skipped + winners - loaded - conflicts


def _instant(utc_us: int) -> datetime:
    return datetime.fromtimestamp(utc_us // 1_000_000, UTC).replace(microsecond=utc_us % 1_000_000)


def fill_conflict_lines(cur: psycopg2.extensions.cursor, bar_file: BarFile) -> None:
    """The raw text of the lines quarantined in SQL, read again from the file."""
    cur.execute(f"select line_no from {REJECTED_TABLE} where raw_line is null order by 1")
    wanted = np.array([row[0] for row in cur.fetchall()], dtype=np.int64)
    if not len(wanted):
        return
    cur.execute("create temp table conflict_lines (line_no integer, raw_line text) on commit drop")
    for chunk in bar_file.chunks():
        start = chunk.first_line_no
        found = wanted[(wanted >= start) & (wanted < start + chunk.line_count)]
        if len(found):
            lines = pd.DataFrame(
                {"line_no": found, "raw_line": [chunk.lines[n - start] for n in found]}
            )
            text = lines.to_csv(index=False, header=False).encode()
            copy_binary.copy_rows(
                cur, "conflict_lines", ["line_no", "raw_line"], text, binary=False
            )
    cur.execute(
        f"""
        update {REJECTED_TABLE} as r set raw_line = c.raw_line
        from conflict_lines as c
        where r.raw_line is null and r.line_no = c.line_no
        """
    )
