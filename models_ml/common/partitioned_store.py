"""Tables that Python stages write, partitioned like the dbt feature tables.

Parent `bqx.<name>` by LIST(pair) → `<name>_<pair>` by RANGE(ts_utc) → monthly leaves
`<name>_<pair>_<yyyy>_<mm>`, primary key (pair, ts_utc). A leaf is replaced whole: TRUNCATE
and a binary COPY in the caller's transaction, so a re-run gives the same rows and an
interrupted run leaves every leaf either old or new. Binary COPY stores float32 values bit
for bit (the nets compute in float32).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.errors import BqxUserError
from bqx.feature_reader import SCHEMA, next_month
from bqx.pairs import validate_pair

_PG_EPOCH_SECONDS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
# column type → its binary COPY layout (big-endian, 4 bytes)
_COPY_TYPES = {"real": ">f4", "integer": ">i4"}


@dataclass(frozen=True)
class ValueColumn:
    name: str
    sql_type: str = "real"

    def __post_init__(self) -> None:
        if self.sql_type not in _COPY_TYPES:
            raise ValueError(f"unsupported column type {self.sql_type!r}")


@dataclass(frozen=True)
class PartitionedTable:
    """A pair → month partitioned table of (pair, ts_utc, *columns), all not null."""

    name: str
    columns: tuple[ValueColumn, ...]
    rerun: str  # the command that rebuilds the table, for error messages

    @property
    def column_names(self) -> list[str]:
        return ["pair", "ts_utc", *(c.name for c in self.columns)]

    def pair_table(self, pair: str) -> str:
        return f"{self.name}_{validate_pair(pair).lower()}"

    def leaf_table(self, pair: str, month: datetime) -> str:
        return f"{self.pair_table(pair)}_{month:%Y_%m}"

    def ensure_parent(self, conn: psycopg2.extensions.connection) -> None:
        """Create the parent if missing; refuse one with other columns."""
        definitions = sql.SQL(", ").join(
            sql.SQL("{} {} not null").format(sql.Identifier(c.name), sql.SQL(c.sql_type))
            for c in self.columns
        )
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "create table if not exists {}.{} (pair text not null, ts_utc timestamptz "
                    "not null, {}, primary key (pair, ts_utc)) partition by list (pair)"
                ).format(sql.Identifier(SCHEMA), sql.Identifier(self.name), definitions)
            )
            cur.execute(
                "select column_name from information_schema.columns "
                "where table_schema = %s and table_name = %s order by ordinal_position",
                (SCHEMA, self.name),
            )
            found = [name for (name,) in cur.fetchall()]
        if found != self.column_names:
            raise BqxUserError(
                f"{SCHEMA}.{self.name} exists with other columns ({len(found)}): drop it "
                f"(drop table {SCHEMA}.{self.name} cascade) and run `{self.rerun}` again"
            )

    def ensure_partition(
        self, conn: psycopg2.extensions.connection, pair: str, month: datetime
    ) -> str:
        """Create the pair's table and the month's leaf if missing; return the leaf's name."""
        pair = validate_pair(pair)
        leaf = self.leaf_table(pair, month)
        schema = sql.Identifier(SCHEMA)
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "create table if not exists {schema}.{pair_table} partition of "
                    "{schema}.{parent} for values in ({pair}) partition by range (ts_utc)"
                ).format(
                    schema=schema,
                    pair_table=sql.Identifier(self.pair_table(pair)),
                    parent=sql.Identifier(self.name),
                    pair=sql.Literal(pair),
                )
            )
            cur.execute(
                sql.SQL(
                    "create table if not exists {schema}.{leaf} partition of "
                    "{schema}.{pair_table} for values from ({start}) to ({end})"
                ).format(
                    schema=schema,
                    leaf=sql.Identifier(leaf),
                    pair_table=sql.Identifier(self.pair_table(pair)),
                    start=sql.Literal(month),
                    end=sql.Literal(next_month(month)),
                )
            )
        return leaf

    def replace_leaf(
        self,
        conn: psycopg2.extensions.connection,
        pair: str,
        month: datetime,
        ts_epoch: np.ndarray,
        values: Sequence[np.ndarray],
    ) -> str:
        """Replace one leaf's rows (caller's transaction: truncate + binary COPY); `values`
        holds one array per column, in order. Returns the leaf's name."""
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} value arrays for {len(self.columns)} columns")
        if any(len(v) != len(ts_epoch) for v in values):
            raise ValueError("value arrays and timestamps differ in length")
        if not all(np.isfinite(v).all() for v in values):
            raise BqxUserError(f"NaN or inf in the rows for {self.name} {pair} {month:%Y-%m}")
        leaf = self.ensure_partition(conn, pair, month)
        target = sql.SQL("{}.{} ({})").format(
            sql.Identifier(SCHEMA),
            sql.Identifier(leaf),
            sql.SQL(", ").join(map(sql.Identifier, self.column_names)),
        )
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("truncate table {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(leaf))
            )
            copy = sql.SQL("copy {} from stdin with (format binary)").format(target)
            payload = self.binary_copy(pair, ts_epoch, values)
            cur.copy_expert(copy.as_string(conn), io.BytesIO(payload))
        return leaf

    def replace_from(
        self,
        conn: psycopg2.extensions.connection,
        start: datetime,
        rows: dict[str, tuple[np.ndarray, Sequence[np.ndarray]]],
    ) -> int:
        """Replace every pair's rows from `start` on (the live tail; caller's transaction):
        delete them, create the months' leaves the new rows need, binary COPY the rows
        (pair -> (ts_epoch, one array per column)). Returns the rows written."""
        self.ensure_parent(conn)
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("delete from {}.{} where ts_utc >= %s").format(
                    sql.Identifier(SCHEMA), sql.Identifier(self.name)
                ),
                (start,),
            )
        # months begin at a UTC midnight, so one epoch a day (not a minute) finds them all
        leaves = {
            (pair, month): self.leaf_table(pair, month)
            for pair, (ts_epoch, _) in rows.items()
            for month in {
                _month_of(int(d)) for d in np.unique(np.asarray(ts_epoch) // 86400) * 86400
            }
        }
        with conn.cursor() as cur:  # one query, not two CREATE IF NOT EXISTS per pair
            cur.execute(
                "select c.relname from pg_class as c join pg_namespace as n"
                " on n.oid = c.relnamespace where n.nspname = %s and c.relname = any(%s)",
                (SCHEMA, list(leaves.values())),
            )
            existing = {row[0] for row in cur.fetchall()}
        for (pair, month), leaf in sorted(leaves.items()):
            if leaf not in existing:
                self.ensure_partition(conn, pair, month)
        payloads = []
        for pair, (ts_epoch, values) in sorted(rows.items()):
            if len(values) != len(self.columns) or any(len(v) != len(ts_epoch) for v in values):
                raise ValueError(f"{self.name} {pair}: value arrays do not match the columns")
            if not all(np.isfinite(v).all() for v in values):
                raise BqxUserError(f"NaN or inf in the rows for {self.name} {pair}")
            payloads.append(self._copy_rows(pair, np.asarray(ts_epoch, dtype=np.int64), values))
        written = sum(len(ts_epoch) for ts_epoch, _ in rows.values())
        if written:
            # one COPY into the parent for every pair (PostgreSQL routes the rows to the
            # leaves): a round trip per pair was 28 of them per table and live minute
            target = sql.SQL("{}.{} ({})").format(
                sql.Identifier(SCHEMA),
                sql.Identifier(self.name),
                sql.SQL(", ").join(map(sql.Identifier, self.column_names)),
            )
            copy = sql.SQL("copy {} from stdin with (format binary)").format(target)
            with conn.cursor() as cur:
                cur.copy_expert(copy.as_string(conn), io.BytesIO(_framed(b"".join(payloads))))
        return written

    def binary_copy(self, pair: str, ts_epoch: np.ndarray, values: Sequence[np.ndarray]) -> bytes:
        """PostgreSQL binary COPY of (pair text, ts_utc timestamptz, *columns), via numpy."""
        return _framed(self._copy_rows(pair, ts_epoch, values))

    def _copy_rows(self, pair: str, ts_epoch: np.ndarray, values: Sequence[np.ndarray]) -> bytes:
        """The rows of a binary COPY (without its header and trailer).

        Every row has the same layout: a field count, then (length, value) for each field,
        all big-endian; timestamptz is microseconds since 2000-01-01 UTC.
        """
        fields = [("count", ">i2"), ("pair_len", ">i4"), ("pair", "S6")]
        fields += [("ts_len", ">i4"), ("ts", ">i8")]
        for i, column in enumerate(self.columns):
            fields += [(f"v{i}_len", ">i4"), (f"v{i}", _COPY_TYPES[column.sql_type])]
        rows = np.zeros(len(ts_epoch), dtype=np.dtype(fields))
        rows["count"] = 2 + len(self.columns)
        rows["pair_len"] = 6
        rows["pair"] = validate_pair(pair).encode()
        rows["ts_len"] = 8
        rows["ts"] = (np.asarray(ts_epoch, dtype=np.int64) - _PG_EPOCH_SECONDS) * 1_000_000
        for i, array in enumerate(values):
            rows[f"v{i}_len"] = 4
            rows[f"v{i}"] = array
        return rows.tobytes()


def _framed(rows: bytes) -> bytes:
    """A binary COPY stream: the header, the rows, the trailer."""
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rows + struct.pack(">h", -1)


def _month_of(epoch: int) -> datetime:
    """The first instant (UTC) of the month holding an epoch second."""
    ts = datetime.fromtimestamp(epoch, UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)
