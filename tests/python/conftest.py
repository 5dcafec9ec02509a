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
def server_url(tmp_path_factory) -> str:
    """A PostgreSQL server for the session: BQX_DATABASE_URL, else an embedded one."""
    external = os.environ.get("BQX_DATABASE_URL")
    if external:
        yield external
        return
    embedded = Settings(home=tmp_path_factory.mktemp("bqx_server"))
    url = db.start_embedded(embedded)
    yield url
    db.stop_embedded(embedded)


@pytest.fixture(scope="session")
def make_settings(server_url, tmp_path_factory):
    """Factory: Settings for a fresh database of its own on the session's server."""
    created: list[str] = []
    admin = psycopg2.connect(server_url)
    admin.autocommit = True

    def make(label: str) -> Settings:
        name = f"bqx_test_{label}_{uuid.uuid4().hex[:6]}"
        with admin.cursor() as cur:
            cur.execute(f"create database {name}")
        created.append(name)
        params = db.parse_database_url(server_url)
        url = (
            f"postgresql://{params.user}:{params.password}@/{name}"
            f"?host={params.host}&port={params.port}"
        )
        return Settings(home=tmp_path_factory.mktemp(f"home_{label}"), database_url=url)

    yield make
    with admin.cursor() as cur:
        for name in created:
            cur.execute(f"drop database if exists {name} with (force)")
    admin.close()


@pytest.fixture(scope="session")
def settings(make_settings) -> Settings:
    """Settings of the database shared by the ingest tests."""
    return make_settings("ingest")


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
