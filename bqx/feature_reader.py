"""The autoencoder's input, streamed from PostgreSQL into float32 arrays.

The input row of (pair, minute) is bqx.ml_feature_matrix inner-joined with
bqx.ml_cross_pair_features on (pair, ts_utc); booleans become 0/1; price levels enter only as
distances from the current price (`relative_levels`: reg_rate_w*_constant_term − rate_index as
reg_rate_w*_constant_term_vs_rate_index; rate_index and reg_rate_w*_prediction left out). The
column list is read from the database every time, never written down, so a model can compare
it with the list it was trained on.

Why the two views are read separately and joined here on the minute: each view is a join of
partitioned tables whose parents carry no statistics, and joining the two views in one query
makes PostgreSQL estimate ~1e30 rows and pick a nested loop (79 s instead of 0.7 s for one
pair-month on the demo data; `enable_nestloop = off` does not help at those costs). Each view
alone gets hash joins. Both reads are ordered by minute and intersected with numpy.

Why binary COPY rather than a named cursor: both stream, but psycopg2 turns every value of a
cursor's rows into a Python float. For one pair-month of ml_feature_matrix (18,634 rows × 158
columns, demo data, loaded machine) a named cursor took 3.7-5.0 s, `COPY (select ...) TO STDOUT
(FORMAT binary)` 0.9-1.2 s for identical arrays, the server's own share being ~0.7 s. Each row
of that COPY has a fixed layout (NULL is sent as NaN), so `_BinaryRows` cuts complete rows out
of the stream as they arrive and turns them into float32 blocks with one numpy view: memory
holds one (pair, month) partition as float32 plus a few MB of bytes, however large the table.

Sampling (`sample_input`): a period's budget is split equally across pairs. A pair's rows are
picked by a seeded hash of the key, `hashtextextended(pair || ':' || epoch, seed)`, kept when
below a threshold; the same filter in both views selects the same keys, the server sends only
the sample, and the same seed always picks the same minutes. The threshold aims 1.5× above
the pair's share (estimated from its minute grid, bqx.rate_index), and a seeded random choice
trims the surplus, so each pair contributes exactly its share when it has that many rows.
A sample reads each pair's whole period in one query rather than month by month: the views
filter the minute range on their first table only, so the server scans the pair's other tables
in full for every query anyway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.errors import BqxUserError
from bqx.pairs import validate_pair
from bqx.periods import Period

log = logging.getLogger(__name__)

SCHEMA = "bqx"
FEATURE_VIEWS = ("ml_feature_matrix", "ml_cross_pair_features")
KEY_COLUMNS = ("pair", "ts_utc")
TARGET_COLUMNS = frozenset({"bqx_t60", "vol_t60", "regime_t60", "regime_t60_code"})
# The minute grid every matrix row sits on: a cheap upper bound of a pair's input rows.
GRID_TABLE = "rate_index"
NUMERIC_TYPES = frozenset({"double precision", "real", "integer", "bigint", "smallint", "numeric"})
COPY_CHUNK_BYTES = 8 * 2**20  # parse the COPY stream every ~8 MB
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
OVERSAMPLE = 1.5
_HASH_RANGE = 2**31

# (stage, done, total): lets the CLI draw a progress bar without library code printing.
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class InputColumn:
    name: str
    data_type: str
    view: str
    # SQL over the view's columns when the input is not the column itself (relative levels)
    expression: str | None = None


# Price levels are not stationary: a model fitted on January's prices meets November's
# outside its train range (the rate index is close × 100 / the first close, so it drifts with
# the market). The ML inputs therefore see levels only as distances from the current price,
# in rate-index units; the feature tables keep their columns. The regression's prediction
# at the window's end minus the current rate index is −residual, already an input, so it is
# left out, and so is the rate index itself (its distance from itself is 0).
LEVEL_COLUMN = "rate_index"
RELATIVE_LEVEL = re.compile(r"^reg_rate_w\d+_constant_term$")
DROPPED_LEVELS = re.compile(r"^(rate_index|reg_rate_w\d+_prediction)$")
RELATIVE_SUFFIX = "_vs_rate_index"


def relative_levels(columns: list[InputColumn]) -> list[InputColumn]:
    """The ML inputs with levels in relative form (see LEVEL_COLUMN above)."""
    out = []
    for column in columns:
        if column.view == FEATURE_VIEWS[0] and DROPPED_LEVELS.match(column.name):
            continue
        if column.view == FEATURE_VIEWS[0] and RELATIVE_LEVEL.match(column.name):
            out.append(
                InputColumn(
                    column.name + RELATIVE_SUFFIX,
                    column.data_type,
                    column.view,
                    f"{column.name} - {LEVEL_COLUMN}",
                )
            )
            continue
        out.append(column)
    return out


@dataclass(frozen=True)
class KeyFilter:
    """Keep a row when hash(pair, minute; seed) falls in the lowest `fraction` of the range."""

    seed: int
    fraction: float

    @property
    def threshold(self) -> int:
        return int(min(max(self.fraction, 0.0), 1.0) * _HASH_RANGE)


@dataclass(frozen=True)
class ExtraColumns:
    """Columns of another keyed relation read beside the input (targets, embeddings), kept
    in a separate array so that nothing but the feature views can reach a model's input."""

    relation: str
    expressions: tuple[sql.Composable, ...]


@dataclass(frozen=True)
class InputBlock:
    """Rows of one pair: minute keys (epoch seconds, ascending) and the feature matrix."""

    pair: str
    ts_epoch: np.ndarray  # int64 (n,)
    features: np.ndarray  # float32 (n, width)
    extras: np.ndarray | None = None  # float32 (n, k): ExtraColumns, in the order asked

    def __len__(self) -> int:
        return len(self.ts_epoch)

    def take(self, rows: np.ndarray) -> InputBlock:
        extras = None if self.extras is None else self.extras[rows]
        return InputBlock(self.pair, self.ts_epoch[rows], self.features[rows], extras)


@dataclass(frozen=True)
class InputSample:
    """A sample across pairs: parallel arrays of pair codes, minute keys and features."""

    pairs: np.ndarray  # str (n,)
    ts_epoch: np.ndarray  # int64 (n,)
    features: np.ndarray  # float32 (n, width)
    rows_per_pair: dict[str, int]
    extras: np.ndarray | None = None  # float32 (n, k), when ExtraColumns were asked for

    def __len__(self) -> int:
        return len(self.ts_epoch)


def input_columns(conn: psycopg2.extensions.connection) -> list[InputColumn]:
    """The model's input columns in order: the matrix's, then the cross-pair view's."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select table_name, column_name, data_type
            from information_schema.columns
            where table_schema = %s and table_name = any(%s)
            order by array_position(%s, table_name::text), ordinal_position
            """,
            (SCHEMA, list(FEATURE_VIEWS), list(FEATURE_VIEWS)),
        )
        rows = cur.fetchall()
    found_views = {view for view, _, _ in rows}
    for view in FEATURE_VIEWS:
        if view not in found_views:
            raise BqxUserError(f"{SCHEMA}.{view} does not exist yet: run `bqx build` first")
    columns = [
        InputColumn(name, kind, view) for view, name, kind in rows if name not in KEY_COLUMNS
    ]
    names = [column.name for column in columns]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise BqxUserError(f"both feature views have columns {', '.join(duplicated)}")
    leaked = sorted(TARGET_COLUMNS.intersection(names))
    if leaked:
        raise BqxUserError(f"target columns {', '.join(leaked)} appear in the feature views")
    unreadable = [
        c for c in columns if c.data_type != "boolean" and c.data_type not in NUMERIC_TYPES
    ]
    if unreadable:
        described = ", ".join(f"{c.view}.{c.name} ({c.data_type})" for c in unreadable)
        raise BqxUserError(f"feature columns that are neither numeric nor boolean: {described}")
    levels = [name for name in names if RELATIVE_LEVEL.match(name)]
    if levels and LEVEL_COLUMN not in names:
        raise BqxUserError(
            f"{SCHEMA}.{FEATURE_VIEWS[0]} has {levels[0]} but no {LEVEL_COLUMN} to make it "
            "relative: rebuild it"
        )
    return relative_levels(columns)


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """First instants (UTC) of the calendar months that overlap [start, end)."""
    start = start.astimezone(UTC)  # a server in another time zone returns other offsets
    month = datetime(start.year, start.month, 1, tzinfo=UTC)
    out = []
    while month < end:
        out.append(month)
        month = next_month(month)
    return out


def next_month(month: datetime) -> datetime:
    """First instant of the month after `month` (a first-of-month instant)."""
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


# Seeded hash of the key, 31 bits: the same in every view, so filters select the same rows.
_HASH_SQL = (
    "(hashtextextended(pair || ':' || extract(epoch from ts_utc)::bigint::text, {}) & 2147483647)"
)


def read_view(
    conn: psycopg2.extensions.connection,
    relation: str,
    expressions: Sequence[sql.Composable],
    pair: str,
    start: datetime,
    end: datetime,
    key_filter: KeyFilter | None = None,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """(minute keys int64, values `dtype`) of one pair in [start, end), ordered by minute.

    Runs in the caller's transaction; NULL becomes NaN. float64 keeps the values as
    PostgreSQL's float8 has them (the live handler's, bqx_online/features.py).
    """
    where = [
        sql.SQL("pair = {} and ts_utc >= {} and ts_utc < {}").format(
            sql.Literal(validate_pair(pair)), sql.Literal(start), sql.Literal(end)
        )
    ]
    if key_filter is not None:
        where.append(
            sql.SQL(_HASH_SQL + " < {}").format(
                sql.Literal(key_filter.seed), sql.Literal(key_filter.threshold)
            )
        )
    query = sql.SQL(
        "copy (select extract(epoch from ts_utc)::bigint, {columns} from {schema}.{relation} "
        "where {where} order by ts_utc) to stdout with (format binary)"
    ).format(
        columns=sql.SQL(", ").join(
            sql.SQL("coalesce({}, 'NaN'::float8)").format(e) for e in expressions
        ),
        schema=sql.Identifier(SCHEMA),
        relation=sql.Identifier(relation),
        where=sql.SQL(" and ").join(where),
    )
    rows = _BinaryRows(len(expressions), dtype)
    with conn.cursor() as cur:
        cur.copy_expert(query.as_string(conn), rows)
    return rows.finish()


class _BinaryRows:
    """A file-like sink for binary COPY of rows (bigint key, float8 × width), none NULL.

    Every row is the field count (int16), then a 4-byte length and the value per field, all
    big-endian: a fixed size, so whole rows are cut from the stream and read with one
    strided numpy view each time COPY_CHUNK_BYTES have arrived.
    """

    def __init__(self, width: int, dtype: type = np.float32) -> None:
        self.width = width
        self.dtype = dtype
        self.row_bytes = 2 + 12 * (width + 1)
        self.pending = bytearray()
        self.header_done = False
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def write(self, data: bytes) -> int:
        self.pending += data
        if len(self.pending) >= COPY_CHUNK_BYTES:
            self._parse()
        return len(data)

    def _parse(self) -> None:
        if not self.header_done:
            if len(self.pending) < 19:
                return
            if bytes(self.pending[:11]) != _COPY_SIGNATURE:
                raise ValueError("not a PostgreSQL binary COPY stream")
            extension = int.from_bytes(self.pending[15:19], "big")
            del self.pending[: 19 + extension]
            self.header_done = True
        n = len(self.pending) // self.row_bytes
        if n == 0:
            return
        raw = bytes(self.pending[: n * self.row_bytes])
        del self.pending[: n * self.row_bytes]
        counts = np.ndarray((n,), ">i2", raw, 0, (self.row_bytes,))
        lengths = np.ndarray((n, self.width + 1), ">i4", raw, 2, (self.row_bytes, 12))
        if (counts != self.width + 1).any() or (lengths != 8).any():
            raise ValueError("unexpected row layout in the COPY stream (a NULL or a non-float8?)")
        self.keys.append(np.ndarray((n,), ">i8", raw, 6, (self.row_bytes,)).astype(np.int64))
        values = np.ndarray((n, self.width), ">f8", raw, 18, (self.row_bytes, 12))
        self.values.append(values.astype(self.dtype))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        self._parse()
        if bytes(self.pending) != b"\xff\xff":
            raise ValueError("truncated COPY stream")
        if not self.keys:
            return np.empty(0, np.int64), np.empty((0, self.width), self.dtype)
        return np.concatenate(self.keys), np.concatenate(self.values)


def column_expression(column: InputColumn) -> sql.Composable:
    """A float8 expression of one feature column (booleans as 0/1; a relative level as the
    difference of two columns, both identifiers)."""
    cast = "::int::float8" if column.data_type == "boolean" else "::float8"
    if column.expression is not None:
        level, _, reference = column.expression.partition(" - ")
        return sql.SQL("({} - {})::float8").format(sql.Identifier(level), sql.Identifier(reference))
    return sql.SQL("{}" + cast).format(sql.Identifier(column.name))


def read_input(
    conn: psycopg2.extensions.connection,
    columns: Sequence[InputColumn],
    pair: str,
    start: datetime,
    end: datetime,
    key_filter: KeyFilter | None = None,
    extras: Sequence[ExtraColumns] = (),
    dtype: type = np.float32,
) -> InputBlock:
    """The joined input of one pair in [start, end): each relation read alone, inner-joined
    on the minute here (see the module docstring for why not in SQL); values `dtype`."""
    reads = [
        (view, [column_expression(c) for c in columns if c.view == view]) for view in FEATURE_VIEWS
    ]
    reads += [(extra.relation, list(extra.expressions)) for extra in extras]
    parts = [
        read_view(conn, rel, exprs, pair, start, end, key_filter, dtype) for rel, exprs in reads
    ]
    keys = parts[0][0]
    for part_keys, _ in parts[1:]:
        keys = np.intersect1d(keys, part_keys, assume_unique=True)
    aligned = [values[np.searchsorted(part_keys, keys)] for part_keys, values in parts]
    n_views = len(FEATURE_VIEWS)
    return InputBlock(
        pair=validate_pair(pair),
        ts_epoch=keys,
        features=np.hstack(aligned[:n_views]),
        extras=np.hstack(aligned[n_views:]) if extras else None,
    )


def grid_rows(conn: psycopg2.extensions.connection, pair: str, period: Period) -> int:
    """Minutes of a pair's grid in a period: an upper bound of its input rows."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "select count(*) from {}.{} where pair = %s and ts_utc >= %s and ts_utc < %s"
            ).format(sql.Identifier(SCHEMA), sql.Identifier(GRID_TABLE)),
            (validate_pair(pair), period.start_utc, period.end_utc),
        )
        return int(cur.fetchone()[0])


def sample_input(
    conn: psycopg2.extensions.connection,
    columns: Sequence[InputColumn],
    period: Period,
    rows: int,
    seed: int,
    pairs: Sequence[str],
    progress: ProgressCallback | None = None,
    extras: Sequence[ExtraColumns] = (),
) -> InputSample:
    """About `rows` input rows of `period`, an equal share per pair, chosen by seeded hashing."""
    if rows < len(pairs):
        raise BqxUserError(f"a sample of {rows} rows cannot cover {len(pairs)} pairs")
    share = rows // len(pairs)
    blocks: list[InputBlock] = []
    empty: list[str] = []
    for done, pair in enumerate(pairs):
        with conn:  # one short read-only transaction per pair
            available = grid_rows(conn, pair, period)
            if available == 0:
                empty.append(pair)
                continue
            key_filter = KeyFilter(seed=seed, fraction=OVERSAMPLE * share / available)
            block = read_input(
                conn,
                columns,
                pair,
                period.start_utc,
                period.end_utc,
                key_filter,
                extras,
            )
        blocks.append(_trim(block, share, seed))
        if progress:
            progress(f"sampling {period.name}", done + 1, len(pairs))
    if empty:  # one line, not one per pair (22 lines on a 6-pair database)
        names = ",".join(empty)
        log.warning("%d pairs have no minutes in the %s period: %s", len(empty), period.name, names)
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise BqxUserError(
            f"no input rows in the {period.name} period ({period.start_utc:%Y-%m-%d %H:%M} to "
            f"{period.end_utc:%Y-%m-%d %H:%M} UTC; windows restart after weekends and gaps): "
            "use more data or move --train-end / --validation-end in `bqx build`"
        )
    return InputSample(
        pairs=np.concatenate([np.full(len(b), b.pair) for b in blocks]),
        ts_epoch=np.concatenate([b.ts_epoch for b in blocks]),
        features=np.concatenate([b.features for b in blocks]),
        rows_per_pair={b.pair: len(b) for b in blocks},
        extras=np.concatenate([b.extras for b in blocks]) if extras else None,
    )


def _trim(block: InputBlock, share: int, seed: int) -> InputBlock:
    """At most `share` rows of a block, chosen by a seeded rng (kept in time order)."""
    if len(block) <= share:
        return block
    rng = np.random.default_rng([seed, int.from_bytes(block.pair.encode(), "big")])
    return block.take(np.sort(rng.choice(len(block), size=share, replace=False)))


def epoch_to_datetime(seconds: int | np.integer) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


# A tail this short is read a minute at a time (see read_since); a longer one by range.
MINUTE_READS_UP_TO = 30


def read_since(
    conn: psycopg2.extensions.connection,
    columns: Sequence[InputColumn],
    start: datetime,
    pairs: Sequence[str],
    extras: Sequence[ExtraColumns] = (),
) -> dict[str, InputBlock]:
    """The joined input of `pairs` from `start` on (the live tail of the matrix), per pair,
    the same rows and values read_input gives for those minutes (the caller's transaction).

    Why two ways: the views filter a minute range on their first table only, so a range read
    hash-joins each pair's other tables whole (measured on 6 pairs × 3 days: 0.34 s for one
    minute, growing with the history), while `ts_utc = <minute>` reaches every table of the
    joins (an index probe each). Up to MINUTE_READS_UP_TO minutes (a live minute) are read a
    minute at a time, one query per pair and minute (minute_queries); a longer tail (a late
    bar, a backlog) by month range per pair, as `bqx embed` reads.
    """
    wanted = [validate_pair(pair) for pair in pairs]
    with conn.cursor() as cur:  # by the key's index (pair, ts_utc), not a scan of the month
        cur.execute(
            sql.SQL(
                "select distinct ts_utc from {}.{} where pair = any(%s) and ts_utc >= %s order by 1"
            ).format(sql.Identifier(SCHEMA), sql.Identifier(GRID_TABLE)),
            (wanted, start),
        )
        minutes = [row[0] for row in cur.fetchall()]
    if not minutes:
        return {}
    if len(minutes) > MINUTE_READS_UP_TO:
        months = month_starts(start, minutes[-1] + timedelta(minutes=1))
        out = {}
        for pair in wanted:
            blocks = [
                read_input(conn, columns, pair, max(start, m), next_month(m), extras=extras)
                for m in months
            ]
            block = _concat(pair, [b for b in blocks if len(b)], bool(extras))
            if block is not None:
                out[pair] = block
        return out
    reads = [
        (view, [column_expression(c) for c in columns if c.view == view]) for view in FEATURE_VIEWS
    ]
    reads += [(extra.relation, list(extra.expressions)) for extra in extras]
    queries = list(zip(wanted, minute_queries(reads, wanted), strict=True))
    rows: dict[str, list[tuple[int, tuple]]] = {}
    with conn.cursor() as cur:
        cur.execute("set local join_collapse_limit = 1")  # see minute_queries
        for minute in minutes:
            epoch = int(minute.timestamp())
            for pair, query in queries:
                cur.execute(query, {"minute": minute})
                for row in cur.fetchall():
                    rows.setdefault(pair, []).append((epoch, row))
        cur.execute("set local join_collapse_limit to default")
    width = sum(len(exprs) for _, exprs in reads[: len(FEATURE_VIEWS)])
    out = {}
    for pair, found in rows.items():
        values = np.array([v for _, v in found], dtype=np.float64).astype(np.float32)
        out[pair] = InputBlock(
            pair=pair,
            ts_epoch=np.array([e for e, _ in found], dtype=np.int64),
            features=values[:, :width],
            extras=values[:, width:] if extras else None,
        )
    return out


def minute_queries(
    reads: Sequence[tuple[str, Sequence[sql.Composable]]], pairs: Sequence[str]
) -> list[sql.Composed]:
    """Per pair, one query (param `minute`) of its input row at that minute: each relation's
    row at (pair, minute) as a subquery, cross-joined (the row exists only when every relation
    has one: the inner join of read_input).

    Why this shape, measured on 28 generated pairs (one minute, load ~2.6): the pair and the
    minute must reach every table of the views' joins as constants, so that the planner keeps
    one leaf per table. With `pair = any(<pairs>)`, one query per view, they reach only the
    view's first table, the other tables' appends list every pair's leaf, and planning the
    10-table join of ml_feature_matrix dominates: 0.24-0.26 s a minute. One query a pair
    (the caller sets `join_collapse_limit = 1`: the views' written join order, every table
    probed by its key, instead of a search over the orders of 10 tables) plans in 1.5 ms and
    runs in 0.3 ms: 0.09 s for 28 pairs. The same 28 branches in one UNION ALL took 0.15 s,
    as planning grows faster than the branches (108 ms for 28)."""
    queries = []
    for pair in pairs:
        literal = sql.Literal(validate_pair(pair))
        parts = [
            sql.SQL("(select {} from {}.{} where ts_utc = %(minute)s and pair = {}) as {}").format(
                sql.SQL(", ").join(sql.SQL("coalesce({}, 'NaN'::float8)").format(e) for e in exprs),
                sql.Identifier(SCHEMA),
                sql.Identifier(relation),
                literal,
                sql.Identifier(f"r{i}"),
            )
            for i, (relation, exprs) in enumerate(reads)
        ]
        queries.append(sql.SQL("select * from {}").format(sql.SQL(" cross join ").join(parts)))
    return queries


def _concat(pair: str, blocks: list[InputBlock], with_extras: bool) -> InputBlock | None:
    if not blocks:
        return None
    return InputBlock(
        pair=pair,
        ts_epoch=np.concatenate([b.ts_epoch for b in blocks]),
        features=np.concatenate([b.features for b in blocks]),
        extras=np.concatenate([b.extras for b in blocks]) if with_extras else None,
    )
