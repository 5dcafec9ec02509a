"""A tail build without dbt's per-model overhead: each partitioned model's own query, compiled
once by dbt with a tail scope, then run per tail build in one transaction.

Why: a tail build through dbt (DbtSession.run) costs about 0.3-0.6 s per model whatever the
rows: dbt renders each model, asks the database which months and pairs to touch, creates
a staging table from the query (planning it), ensures every pair's partitions, deletes pair
by pair, inserts and commits. With 17 models that is 4.6-4.9 s for a tail of one to five
minutes of 2 pairs (rate_index, a select of one column, took 0.49 s), most of a minute's
latency.

What is run is exactly what the partitioned_table materialization runs in a tail build: for
each model, in dbt's dependency order, `delete from <model> where ts_utc >= <its tail start>`
and `insert into <model> select * from (<its compiled query>)`. The query is dbt's compiled
SQL of the model with var tail_from set to SENTINEL; the sentinel's literal is replaced by the
tail's minute (tail_literal). One feature definition stays in dbt SQL; nothing is rewritten.
All models go in one transaction: a tail build is applied whole or not at all.

When the compiled text could differ, the tail runs through dbt and is compiled again
(DbtSession.tail): the first tail of a session that did not compile them at its start
(DbtSession.prepare, serve's), a new month (the materialization creates its
partitions), a pair's first bars (sister_correlation lists its couples when it compiles),
after a batch build (what the models read when they compile, such as the lead-lag slots, may
have changed), and when a compiled statement fails.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace

import psycopg2.extensions

from bqx.dbt_runner import BuildScope

log = logging.getLogger(__name__)

SENTINEL = "1999-12-31 23:59:00+00"  # the tail_from compiled in; no data is that old
_SENTINEL_LITERAL = f"'{SENTINEL}'"


@dataclass(frozen=True)
class TailStatement:
    """One partitioned model's share of a tail build."""

    model: str  # table name in schema bqx, from dbt's relation name
    lookback_minutes: int  # config(tail_lookback_minutes): rows recomputed before tail_from
    query: str  # the compiled query, with _SENTINEL_LITERAL where tail_from goes
    # the model's pre-hook `set local` settings (local_settings): (name, statement) each
    settings: tuple[tuple[str, str], ...] = ()


def table_of(relation_name: str) -> str:
    """The table of dbt's relation name ('"db"."bqx"."int_m1_grid_filled"' -> its name)."""
    parts = relation_name.replace('"', "").split(".")
    name = parts[-1]
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"unexpected relation name {relation_name!r}")
    return name


_SET_LOCAL = re.compile(r"set local ([a-z_]+) = '[A-Za-z0-9]+';")


def local_settings(hooks: list[str]) -> tuple[tuple[str, str], ...]:
    """(setting name, `set local` statement) of a model's pre-hooks (macro local_settings, the
    only hooks a partitioned model has); anything else cannot run here and is an error."""
    statements: list[tuple[str, str]] = []
    for hook in hooks:
        if _SET_LOCAL.sub("", hook).strip():
            raise RuntimeError(f"a pre-hook the compiled tail cannot run: {hook.strip()!r}")
        statements.extend((m.group(1), m.group(0)) for m in _SET_LOCAL.finditer(hook))
    return tuple(statements)


def dependency_order(nodes: dict[str, object]) -> list[str]:
    """unique_ids of `nodes` (dbt nodes) with every node after the ones it depends on."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen:
            return
        seen.add(uid)
        for parent in nodes[uid].depends_on.nodes:
            if parent in nodes:
                visit(parent)
        ordered.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return ordered


class CompiledTail:
    """The tail statements of every partitioned model, compiled by `session` for `scope`."""

    def __init__(self, session, scope: BuildScope, selector: str) -> None:
        started = time.perf_counter()
        compiled = session.compile(selector, replace(scope, tail_from=SENTINEL))
        # the selection brings the models' data tests along: only the models are run
        nodes = {uid: node for uid, node in compiled.items() if uid.startswith("model.")}
        self.statements: list[TailStatement] = []
        for uid in dependency_order(nodes):
            node = nodes[uid]
            query = node.compiled_code or ""
            if _SENTINEL_LITERAL not in query:
                raise RuntimeError(f"{node.name}: the compiled tail query has no tail_from")
            extra = node.config.to_dict()
            self.statements.append(
                TailStatement(
                    table_of(node.relation_name),
                    int(extra.get("tail_lookback_minutes") or 0),
                    query,
                    local_settings([hook.sql for hook in node.config.pre_hook]),
                )
            )
        log.info(
            "compiled %d tail statements in %.1f s",
            len(self.statements),
            time.perf_counter() - started,
        )

    def run(self, conn: psycopg2.extensions.connection, literal: str) -> dict[str, float]:
        """Every statement from the minute `literal` ('YYYY-MM-DD HH:MM:00+00'), in one
        transaction; returns each model's seconds."""
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:00\+00", literal):
            raise ValueError(f"bad tail minute {literal!r}")
        timings: dict[str, float] = {}
        with conn, conn.cursor() as cur:
            for statement in self.statements:
                began = time.perf_counter()
                start = (
                    f"(timestamptz '{literal}' - interval '{statement.lookback_minutes} minute')"
                )
                query = statement.query.replace(_SENTINEL_LITERAL, f"'{literal}'")
                for _, setting in statement.settings:
                    cur.execute(setting)
                cur.execute(f"delete from bqx.{statement.model} where ts_utc >= {start}")
                cur.execute(
                    f"insert into bqx.{statement.model} select * from ({query}) as model_rows"
                )
                for name, _ in statement.settings:  # the model's own, as in dbt's transaction
                    cur.execute(f"set local {name} to default")
                timings[statement.model] = time.perf_counter() - began
        return timings
