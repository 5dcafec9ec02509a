"""DDL for the raw layer: the bar table partitioned by pair, the quarantine and the ingest log."""

from __future__ import annotations

from importlib import resources

import psycopg2.extensions

from bqx.pairs import PAIRS, validate_pair


def raw_partition_name(pair: str) -> str:
    return f"m1_bars_{validate_pair(pair).lower()}"


def ensure_raw_schema(conn: psycopg2.extensions.connection) -> None:
    """Create the raw schema, tables and one list partition per pair (idempotent)."""
    ddl = resources.files("bqx.sql").joinpath("raw_schema.sql").read_text()
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('bqx.raw_schema'))")
        cur.execute(ddl)
        for pair in PAIRS:
            # pair is validated against the universe before it reaches SQL text
            cur.execute(
                f"create table if not exists raw.{raw_partition_name(pair)} "
                f"partition of raw.m1_bars for values in (%s)",
                (validate_pair(pair),),
            )
