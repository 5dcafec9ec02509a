"""Where a minute's inputs come from: the features of (pair, minute), the realized bqx_60 of a
minute, and the static multi-task net's prediction when that table exists.

`PostgresFeatures` reads one minute at a time from the dbt views (the live handler);
`MemoryFeatures` holds arrays of a whole span, read once with bqx.feature_reader's
binary COPY (replay, tests, benchmarks). Both filter the minute by equality, which PostgreSQL
carries through every join of the views (a range would be applied to their first table only).

A live backlog (serve finding many new minutes at one look) is read as a span too:
`PostgresFeatures.prefetched(first, last)` reads the span's features, realized values and
static predictions with the binary COPY reader, per pair and relation, in float64 (PostgreSQL's
float8, the values the minute reads give, so the same predictions), and the step's reads of
those minutes are answered from memory. Per minute the reads were 57 queries for 28 pairs (two
views, then bqx_60 and the static prediction per pair); bench/live.py's one-day backlog of 28
pairs (no trained models) stepped at 0.27 s a minute p50 with them, 0.14 s with one read of the
day (1.7 s), the catch-up from 3.0 to 6.0 minutes/s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.errors import BqxUserError
from bqx.feature_reader import (
    FEATURE_VIEWS,
    InputColumn,
    column_expression,
    input_columns,
    month_starts,
    next_month,
    read_input,
    read_view,
)
from bqx.pairs import PAIRS, validate_pair
from bqx_online.config import OnlineConfig

log = logging.getLogger(__name__)

REALIZED_TABLE = ("bqx", "bqx_values", "bqx_60")
STATIC_TABLE = ("bqx", "multitask_predictions", "bqx_t60_pred")


class FeatureSource(Protocol):
    feature_names: tuple[str, ...]

    def features(self, ts: datetime, pairs: Sequence[str]) -> dict[str, dict[str, float]]:
        """{pair: {feature: value}} of the pairs that have a row at minute ts."""

    def realized(self, pair: str, ts: datetime) -> float | None:
        """bqx_60 of the pair at minute ts (None when not (yet) known)."""

    def static_prediction(self, pair: str, ts: datetime) -> float | None:
        """The multi-task net's bqx_t60 prediction at ts, if it has one."""


def as_dict(names: Sequence[str], values: np.ndarray) -> dict[str, float]:
    """A river input row; NaN (a NULL in the database) is left out, as river expects."""
    return {name: float(v) for name, v in zip(names, values, strict=True) if math.isfinite(v)}


def select_columns(
    conn: psycopg2.extensions.connection, wanted: Sequence[str]
) -> list[InputColumn]:
    """The feature columns to use: `wanted` ones present in the views (all when empty)."""
    columns = input_columns(conn)
    if not wanted:
        return columns
    by_name = {c.name: c for c in columns}
    chosen = [by_name[name] for name in wanted if name in by_name]
    for view in FEATURE_VIEWS:  # each view adds a column: rows are those of both views
        if chosen and not any(c.view == view for c in chosen):
            chosen.append(next(c for c in columns if c.view == view))
    missing = [name for name in wanted if name not in by_name]
    if missing:
        log.info("feature columns not in the views, skipped: %s", ", ".join(missing))
    if not chosen:
        raise BqxUserError("none of the online learner's feature columns is in the feature views")
    return chosen


def relation_exists(conn: psycopg2.extensions.connection, schema: str, table: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s) is not null", (f"{schema}.{table}",))
        return bool(cur.fetchone()[0])


def _finite(keys: np.ndarray, values: np.ndarray) -> dict[int, float]:
    return {int(t): float(v) for t, v in zip(keys, values, strict=True) if math.isfinite(v)}


def _epoch(ts: datetime) -> int:
    return int(ts.timestamp())


class MemoryFeatures:
    """A span of history in arrays: what replay streams through the handler."""

    def __init__(self, feature_names: Sequence[str]) -> None:
        self.feature_names = tuple(feature_names)
        self._rows: dict[str, tuple[dict[int, int], np.ndarray]] = {}
        self._realized: dict[str, dict[int, float]] = {}
        self._static: dict[str, dict[int, float]] = {}

    def add_pair(
        self,
        pair: str,
        ts_epoch: np.ndarray,
        features: np.ndarray,
        realized_epoch: np.ndarray,
        realized: np.ndarray,
        static_epoch: np.ndarray | None = None,
        static: np.ndarray | None = None,
    ) -> None:
        index = {int(t): i for i, t in enumerate(ts_epoch)}
        self._rows[pair] = (index, np.asarray(features, dtype=np.float64))
        self._realized[pair] = _finite(realized_epoch, realized)
        if static_epoch is not None and static is not None:
            self._static[pair] = _finite(static_epoch, static)

    @property
    def pairs(self) -> list[str]:
        return list(self._rows)

    def minutes(self) -> list[datetime]:
        """Every minute at which some pair has features, in order."""
        epochs: set[int] = set()
        for index, _ in self._rows.values():
            epochs.update(index)
        return [datetime.fromtimestamp(t, tz=UTC) for t in sorted(epochs)]

    def features(self, ts: datetime, pairs: Sequence[str]) -> dict[str, dict[str, float]]:
        key = _epoch(ts)
        out = {}
        for pair in pairs:
            index, matrix = self._rows.get(pair, ({}, None))
            row = index.get(key)
            if row is not None:
                out[pair] = as_dict(self.feature_names, matrix[row])
        return out

    def realized(self, pair: str, ts: datetime) -> float | None:
        return self._realized.get(pair, {}).get(_epoch(ts))

    def static_prediction(self, pair: str, ts: datetime) -> float | None:
        return self._static.get(pair, {}).get(_epoch(ts))


def load_history(
    conn: psycopg2.extensions.connection,
    pairs: Sequence[str],
    start: datetime,
    end: datetime,
    wanted: Sequence[str],
    horizon_minutes: int,
    use_static: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> MemoryFeatures:
    """Features of [start, end) and realized bqx_60 up to end + horizon, month by month."""
    columns = select_columns(conn, wanted)
    source = MemoryFeatures([c.name for c in columns])
    has_static = use_static and relation_exists(conn, *STATIC_TABLE[:2])
    realized_end = end + timedelta(minutes=horizon_minutes + 1)
    months = month_starts(start, end)
    for done, pair in enumerate(pairs):
        keys, blocks, static_keys, static_values = [], [], [], []
        for month in months:
            lo, hi = max(month, start), min(next_month(month), end)
            with conn:
                block = read_input(conn, columns, pair, lo, hi)
                if has_static:
                    s_keys, s_values = read_view(
                        conn, STATIC_TABLE[1], [sql.Identifier(STATIC_TABLE[2])], pair, lo, hi
                    )
                    static_keys.append(s_keys)
                    static_values.append(s_values[:, 0])
            keys.append(block.ts_epoch)
            blocks.append(block.features)
        with conn:
            realized_column = [sql.Identifier(REALIZED_TABLE[2])]
            r_keys, r_values = read_view(
                conn, REALIZED_TABLE[1], realized_column, pair, start, realized_end
            )
        source.add_pair(
            pair,
            np.concatenate(keys) if keys else np.empty(0, np.int64),
            np.concatenate(blocks) if blocks else np.empty((0, len(columns)), np.float32),
            r_keys,
            r_values[:, 0],
            np.concatenate(static_keys) if static_keys else None,
            np.concatenate(static_values) if static_values else None,
        )
        if progress:
            progress("reading features", done + 1, len(pairs))
    return source


class PostgresFeatures:
    """One minute at a time from the views: what the live handler reads."""

    def __init__(
        self,
        conn: psycopg2.extensions.connection,
        config: OnlineConfig,
        pairs: Sequence[str] = (),
    ) -> None:
        """The learner's features (`config.features`), its static member's predictions when
        `config.use_static`. `pairs`: read only these (the learner's), one branch per pair
        (see _read)."""
        self.conn = conn
        self.pairs = tuple(validate_pair(pair) for pair in pairs)
        self.columns = select_columns(conn, config.features)
        self.feature_names = tuple(c.name for c in self.columns)
        self.use_static = config.use_static
        self.has_static = False  # the static member's table exists (_check_static)
        self._check_static()
        # a minute's rows stay cached while the minutes read are this close to it: a step
        # reads its minute, and its learning the minutes of the predictions whose outcomes
        # matured, at most this far back in steady running; so each minute is read once
        self._keep = int(config.steady_learning_reach.total_seconds())
        self._cache: dict[int, dict[str, dict[str, float]]] = {}
        self._warned: set[str] = set()  # pairs _warn_one_view has named
        self._span: tuple[int, int, MemoryFeatures] | None = None  # prefetched: first, last

    def _check_static(self) -> None:
        """Whether the multi-task predictions' table exists, asked again (one catalog lookup)
        at each minute read until it does: the nets may be trained while serve runs, and
        serve's model step then creates the table; the static member joins at the next
        minute, without a restart."""
        if self.use_static and not self.has_static:
            with self.conn:
                self.has_static = relation_exists(self.conn, *STATIC_TABLE[:2])

    def _in_span(self, ts: datetime) -> MemoryFeatures | None:
        if self._span is None:
            return None
        first, last, memory = self._span
        return memory if first <= _epoch(ts) <= last else None

    @contextmanager
    def prefetched(self, first: datetime, last: datetime) -> Iterator[None]:
        """Within the block, the minutes [first, last] are answered from one read of the span
        (see the module docstring): for a backlog, where the rows no longer change while it
        is stepped. Minutes outside it are read as always."""
        memory = MemoryFeatures(self.feature_names)
        end = last + timedelta(minutes=1)
        self._check_static()
        with self.conn:
            for pair in self.pairs or PAIRS:
                block = read_input(self.conn, self.columns, pair, first, end, dtype=np.float64)
                r_keys, r_values = self._read_scalars(REALIZED_TABLE, pair, first, end)
                s_keys, s_values = (
                    self._read_scalars(STATIC_TABLE, pair, first, end)
                    if self.has_static
                    else (None, None)
                )
                memory.add_pair(
                    pair, block.ts_epoch, block.features, r_keys, r_values, s_keys, s_values
                )
        self._span = (_epoch(first), _epoch(last), memory)
        try:
            yield
        finally:
            self._span = None

    def _read_scalars(
        self, table: tuple[str, str, str], pair: str, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray]:
        keys, values = read_view(
            self.conn, table[1], [sql.Identifier(table[2])], pair, start, end, dtype=np.float64
        )
        return keys, values[:, 0]

    def _minute(self, ts: datetime) -> dict[str, dict[str, float]]:
        key = _epoch(ts)
        span = self._in_span(ts)
        if key not in self._cache and span is not None:
            self._cache_minute(key, span.features(ts, span.pairs))
        if key not in self._cache:
            self._check_static()
            parts = []
            for view in FEATURE_VIEWS:
                exprs = [column_expression(c) for c in self.columns if c.view == view]
                parts.append(self._read(view, exprs, ts))
            rows: dict[str, dict[str, float]] = {}
            for pair in set(parts[0]).intersection(*parts[1:]):
                values = np.concatenate([part[pair] for part in parts])
                rows[pair] = as_dict(self.feature_names, values)
            self._warn_one_view(parts, rows, ts)
            self._cache_minute(key, rows)
        return self._cache[key]

    def _cache_minute(self, key: int, rows: dict[str, dict[str, float]]) -> None:
        self._cache = {k: v for k, v in self._cache.items() if abs(k - key) <= self._keep}
        self._cache[key] = rows

    def _warn_one_view(
        self, parts: list[dict[str, np.ndarray]], rows: dict[str, object], ts: datetime
    ) -> None:
        """Once per pair: a row in one view but not the other is no input, so no prediction.
        The cross-pair view needs 2 sister pairs per pair (sharing a currency): a database
        of 2 pairs has none, and serve stepped such minutes predicting nothing, silently."""
        for view, part in zip(FEATURE_VIEWS, parts, strict=True):
            for pair in sorted(set().union(*parts) - set(part) - set(rows) - self._warned):
                self._warned.add(pair)
                log.warning(
                    "%s has no %s row at %s: no prediction for it (cross-pair features need "
                    "2 sister pairs sharing a currency, see bqx.sister_pair_selection)",
                    pair,
                    view,
                    f"{ts:%Y-%m-%d %H:%M}",
                )

    def _read(
        self, relation: str, exprs: Iterable[sql.Composable], ts: datetime
    ) -> dict[str, np.ndarray]:
        exprs = list(exprs)
        if not exprs:
            return {}
        branch = sql.SQL("select pair, {} from bqx.{} where ts_utc = %(ts)s").format(
            sql.SQL(", ").join(sql.SQL("coalesce({}, 'NaN'::float8)").format(e) for e in exprs),
            sql.Identifier(relation),
        )
        params: dict[str, object] = {"ts": ts}
        if self.pairs:
            # One branch per pair, each `pair = <one value>`, and the views' joins in their
            # written order. Planning the matrix (ten partitioned tables joined, every pair's
            # partitions in play) was the step's cost: 2 reads of 0.10 s in a 0.22 s step for
            # one learner (cProfile, 6 pairs built, load 5); a pair's branch plans its one
            # partition per table in 4 ms (EXPLAIN ANALYZE: planning 108 ms, execution 8 ms)
            branches = [
                branch + sql.SQL(" and pair = {}").format(sql.Placeholder(f"p{i}"))
                for i in range(len(self.pairs))
            ]
            query = sql.SQL(" union all ").join(branches)
            params.update({f"p{i}": pair for i, pair in enumerate(self.pairs)})
        else:
            query = branch
        with self.conn, self.conn.cursor() as cur:
            if self.pairs:
                cur.execute("set local join_collapse_limit = 1")
            cur.execute(query, params)
            return {row[0]: np.array(row[1:], dtype=np.float64) for row in cur.fetchall()}

    def features(self, ts: datetime, pairs: Sequence[str]) -> dict[str, dict[str, float]]:
        rows = self._minute(ts)
        return {pair: rows[pair] for pair in pairs if pair in rows}

    def _scalar(self, table: tuple[str, str, str], pair: str, ts: datetime) -> float | None:
        # float8 in SQL, as the span's read casts it (a float4 column's text is not its value)
        query = sql.SQL("select {}::float8 from {}.{} where pair = %s and ts_utc = %s").format(
            sql.Identifier(table[2]), sql.Identifier(table[0]), sql.Identifier(table[1])
        )
        with self.conn, self.conn.cursor() as cur:
            cur.execute(query, (pair, ts))
            row = cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def realized(self, pair: str, ts: datetime) -> float | None:
        span = self._in_span(ts)
        return self._scalar(REALIZED_TABLE, pair, ts) if span is None else span.realized(pair, ts)

    def static_prediction(self, pair: str, ts: datetime) -> float | None:
        if not self.has_static:
            return None
        span = self._in_span(ts)
        if span is None:
            return self._scalar(STATIC_TABLE, pair, ts)
        return span.static_prediction(pair, ts)

    def latest_minute(self, at: datetime | None = None) -> datetime | None:
        """The newest minute with base features, at or before `at` (what a live step predicts
        for; the newest bqx_values minute stands for the matrix's)."""
        with self.conn, self.conn.cursor() as cur:
            if at is None:
                cur.execute("select max(ts_utc) from bqx.bqx_values")
            else:
                cur.execute("select max(ts_utc) from bqx.bqx_values where ts_utc <= %s", (at,))
            return cur.fetchone()[0]

    def minutes_between(self, after: datetime, through: datetime) -> list[datetime]:
        """The minutes with base features in (after, through], in order: what serve steps
        after it fell behind (a backlog, a slow step)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "select distinct ts_utc from bqx.bqx_values where ts_utc > %s and ts_utc <= %s"
                " order by ts_utc",
                (after, through),
            )
            return [row[0] for row in cur.fetchall()]
