"""What the feature matrix holds, read from the database (never hard-coded)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions

MATRIX = "ml_feature_matrix"
KEY_COLUMNS = ("pair", "ts_utc")


@dataclass(frozen=True)
class FeatureColumn:
    name: str
    data_type: str


def matrix_columns(conn: psycopg2.extensions.connection) -> list[FeatureColumn]:
    """Feature columns of bqx.ml_feature_matrix in order (the key columns excluded)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select column_name, data_type
            from information_schema.columns
            where table_schema = 'bqx' and table_name = %s
            order by ordinal_position
            """,
            (MATRIX,),
        )
        rows = cur.fetchall()
    return [FeatureColumn(name, kind) for name, kind in rows if name not in KEY_COLUMNS]


def family_of(column: str) -> str:
    """A readable family name for a matrix column (prefix before the window number)."""
    for prefix in ("reg_rate_", "reg_bqx_", "sister_", "hl_vol_", "vol_", "bqx_lag_", "bqx_"):
        if column.startswith(prefix):
            return prefix.rstrip("_")
    return column.rsplit("_", 1)[0] if column[-1].isdigit() else column
