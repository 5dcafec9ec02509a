"""The embedded server: it runs with EMBEDDED_SERVER_SETTINGS, a data directory configured with
another set is configured again once, and under its wal_level = minimal a crash of the server
loses no committed row of a table created or truncated in the committing transaction (the
rows a build writes skip WAL and are synced at commit instead)."""

from __future__ import annotations

import os

import psycopg2
import pytest

from bqx import db
from bqx.config import Settings

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("BQX_DATABASE_URL")), reason="an external server keeps its configuration"
)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """An embedded server of the module's own (its settings and crashes touch no other test)."""
    settings = Settings(home=tmp_path_factory.mktemp("own_server"))
    db.start_embedded(settings)
    yield settings
    db.stop_embedded(settings)


def query(settings: Settings, sql: str):
    conn = psycopg2.connect(db.embedded_status(settings))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()
    finally:
        conn.close()


def assert_runs_with_the_set(settings: Settings) -> None:
    for name, value in db.EMBEDDED_SERVER_SETTINGS.items():
        assert query(settings, f"show {name}")[0] == value, name


def test_the_embedded_server_runs_with_every_setting(own_server):
    assert_runs_with_the_set(own_server)


def test_a_changed_set_is_applied_once_with_a_restart(own_server, monkeypatch):
    monkeypatch.setitem(db.EMBEDDED_SERVER_SETTINGS, "work_mem", "300MB")
    monkeypatch.delitem(db.EMBEDDED_SERVER_SETTINGS, "jit")
    before = db.postmaster_pid(own_server)
    db.start_embedded(own_server)
    restarted = db.postmaster_pid(own_server)
    assert restarted != before
    assert query(own_server, "show work_mem")[0] == "300MB"
    assert query(own_server, "show jit")[0] == "on"  # dropped from the set: back to default
    db.start_embedded(own_server)
    assert db.postmaster_pid(own_server) == restarted  # the same set: no second restart

    monkeypatch.undo()
    (own_server.pgdata / ".bqx_configured").write_text("configured\n")  # an older release's
    db.start_embedded(own_server)
    assert db.postmaster_pid(own_server) != restarted
    assert (own_server.pgdata / ".bqx_configured").read_text() == db.settings_stamp()
    assert_runs_with_the_set(own_server)


def test_a_crash_loses_no_committed_row_of_a_new_or_truncated_table(own_server):
    conn = psycopg2.connect(db.embedded_status(own_server))
    with conn, conn.cursor() as cur:
        cur.execute("create table kept (id int, x float8); insert into kept values (1, 1.5)")
    with conn, conn.cursor() as cur:
        # committed means flushed here; a build's synchronous_commit = off may lose its last
        # commit in a crash, and then the tables are at their old version, as after a kill
        cur.execute("set synchronous_commit = on")
        cur.execute("select pg_current_wal_lsn()")
        start = cur.fetchone()[0]
        # a build: a new table filled and indexed, and a truncated one refilled (--months),
        # one above wal_skip_threshold (synced at commit) and one below (its pages to WAL)
        cur.execute(
            "create table big as select i as id, i * 0.5 as x, md5(i::text) as pad "
            "from generate_series(1, 200000) as i"
        )
        cur.execute("alter table big add primary key (id)")
        cur.execute(
            "truncate kept; insert into kept select i, i * 0.25 from generate_series(1, 500) i"
        )
        cur.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (start,))
        wal_bytes = cur.fetchone()[0]
        cur.execute("select pg_total_relation_size('big')")
        table_bytes = cur.fetchone()[0]
    conn.close()
    assert wal_bytes < table_bytes / 20  # the rows skipped WAL

    log = own_server.pgdata / "log"
    log_before = log.read_text()
    db._pg_ctl(own_server, ["-w", "-m", "immediate", "-l", str(log), "restart"])  # a crash
    assert "automatic recovery in progress" in log.read_text()[len(log_before) :]

    assert query(own_server, "select count(*), sum(x), count(distinct pad) from big") == (
        200000,
        sum(i * 0.5 for i in range(1, 200001)),
        200000,
    )
    assert query(own_server, "select count(*), sum(x) from kept") == (
        500,
        sum(i * 0.25 for i in range(1, 501)),
    )
    assert query(own_server, "select count(*) from big where id between 1000 and 1999")[0] == 1000
