"""The chronological train / validation / test split, read from the dbt model bqx.ml_periods.

One definition for every stage: SQL (sister selection) and Python (Granger, scalers, training,
evaluation) both read the same table, so no stage can fit on rows another calls test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg2.extensions

from bqx.errors import BqxUserError

PERIODS = ("train", "validation", "test")


@dataclass(frozen=True)
class Period:
    name: str
    start_utc: datetime  # inclusive
    end_utc: datetime  # exclusive


@dataclass(frozen=True)
class Periods:
    train: Period
    validation: Period
    test: Period
    embargo_minutes: int


def load_periods(conn: psycopg2.extensions.connection) -> Periods:
    """The split as built by dbt; a clear error when the model has not been built yet."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass('bqx.ml_periods')")
        if cur.fetchone()[0] is None:
            raise BqxUserError("bqx.ml_periods does not exist yet: run `bqx build` first")
        cur.execute("select period, start_utc, end_utc, embargo_minutes from bqx.ml_periods")
        rows = cur.fetchall()
    found = {name: Period(name, start, end) for name, start, end, _ in rows}
    if set(found) != set(PERIODS):
        raise BqxUserError("bqx.ml_periods is incomplete: rebuild it with `bqx build`")
    for period in found.values():
        if period.end_utc <= period.start_utc:
            raise BqxUserError(
                f"the {period.name} period is empty ({period.start_utc} to {period.end_utc}): "
                "use more data or move --train-end / --validation-end"
            )
    return Periods(**found, embargo_minutes=int(rows[0][3]))
