"""DDL of every table Python writes, one `.sql` file per table family, applied idempotently.

dbt owns the feature tables; these are the others: the raw layer (`raw.sql`: bars, the
quarantine, the ingest log), `granger.sql` (`bqx granger`), `evaluation.sql` (`bqx evaluate`),
`online.sql` (the online learner's predictions, drift events, weights, checkpoints),
`live.sql` (the live loop's tail builds) and `live_models.sql` (its model steps). The
partitioned embedding and prediction tables take their columns from the model that writes
them (models_ml/common/partitioned_store.py). One file per table: no table is declared twice.
"""

from __future__ import annotations

from importlib import resources

import psycopg2.extensions

from bqx.pairs import PAIRS, validate_pair

FAMILIES = ("raw", "granger", "evaluation", "online", "live", "live_models")


def ddl(family: str) -> str:
    """The DDL text of a table family (a name of FAMILIES)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown table family {family!r}")
    return resources.files("bqx.sql").joinpath(f"{family}.sql").read_text()


def apply_ddl(cur: psycopg2.extensions.cursor, family: str) -> None:
    """Create the family's tables if they do not exist, under a transaction-scoped advisory
    lock so two processes creating them at once do not collide."""
    cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"bqx.ddl.{family}",))
    cur.execute(ddl(family))


def raw_partition_name(pair: str) -> str:
    return f"m1_bars_{validate_pair(pair).lower()}"


def ensure_raw_schema(conn: psycopg2.extensions.connection) -> None:
    """Create the raw schema, tables and one list partition per pair (idempotent)."""
    with conn.cursor() as cur:
        apply_ddl(cur, "raw")
        for pair in PAIRS:
            # pair is validated against the universe before it reaches SQL text
            cur.execute(
                f"create table if not exists raw.{raw_partition_name(pair)} "
                f"partition of raw.m1_bars for values in (%s)",
                (validate_pair(pair),),
            )
