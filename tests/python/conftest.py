"""Shared fixtures: one real PostgreSQL per test session (embedded, or BQX_DATABASE_URL)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg2
import pytest

from bqx import db
from bqx.config import Settings
from bqx.schema import ensure_raw_schema

REPO = Path(__file__).resolve().parents[2]
REAL_DATA = REPO.parent / "shared" / "data" / "fx_m1"


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """Settings pointing at a database used by this test session only."""
    home = tmp_path_factory.mktemp("bqx_home")
    server_url = os.environ.get("BQX_DATABASE_URL")
    if not server_url:
        embedded = Settings(home=home)
        db.start_embedded(embedded)
        yield embedded
        db.stop_embedded(embedded)
        return
    # An external server: work in a database of our own and drop it afterwards.
    name = f"bqx_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    params = db.parse_database_url(server_url)
    url = f"postgresql://{params.user}:{params.password}@/{name}?host={params.host}&port={params.port}"
    yield Settings(home=home, database_url=url)
    with admin.cursor() as cur:
        cur.execute(f"drop database if exists {name} with (force)")
    admin.close()


@pytest.fixture()
def conn(settings):
    connection = db.connect(settings)
    with connection:
        ensure_raw_schema(connection)
    yield connection
    connection.close()


@pytest.fixture()
def empty_raw(conn):
    """The raw tables, emptied before the test."""
    with conn, conn.cursor() as cur:
        cur.execute("truncate raw.m1_bars, raw.m1_bars_rejected, raw.ingest_log")
    return conn


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "EURUSD.csv.gz").exists():
        pytest.skip(f"real HistData bars not found at {REAL_DATA} (../shared/data/fx_m1)")
    return REAL_DATA


def count(conn, sql: str, params=None) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return int(cur.fetchone()[0])
