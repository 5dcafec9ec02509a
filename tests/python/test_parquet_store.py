"""Raw bars as parquet for the spark target: `bqx ingest --to parquet` and its user errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from bqx.cli import app
from bqx.dbt_runner import check_spark_session
from bqx.errors import BqxUserError
from bqx.ingest.bar_files import DUPLICATE_CONFLICT
from bqx.ingest.parquet_store import PARTITION_COLUMN, ParquetStore, ingest_file_to_parquet

BARS = """ts_utc,open,high,low,close,volume
2024-01-31 23:58:00,1.08001,1.08003,1.07999,1.08002,0
2024-01-31 23:59:00,1.08002,1.08004,1.08000,1.08003,0
2024-02-01 00:00:00,1.08003,1.08006,1.08002,1.08005,0
2024-02-01 00:01:00,1.08005,1.08007,1.08001,1.08002,0
2024-02-01 00:02:00,1.08002,1.08001,1.08003,1.08002,0
"""


def stored_bars(store: ParquetStore) -> pd.DataFrame:
    return ds.dataset(store.bars_dir, partitioning="hive").to_table().to_pandas()


def test_bars_land_in_pair_and_month_partitions_and_bad_lines_are_quarantined(tmp_path: Path):
    (tmp_path / "EURUSD.csv").write_text(BARS)
    store = ParquetStore(tmp_path / "store")
    result = ingest_file_to_parquet(store, tmp_path / "EURUSD.csv")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 4, 1)
    bars = stored_bars(store)
    months = bars.groupby(PARTITION_COLUMN, observed=True).size().to_dict()
    assert {str(k): v for k, v in months.items()} == {"2024-01-01": 2, "2024-02-01": 2}
    assert set(bars["pair"]) == {"EURUSD"} and set(bars["source"]) == {"EURUSD.csv"}
    assert str(bars["ts_utc"].dtype) == "timestamp[us, tz=UTC]" or bars["ts_utc"].dt.tz is not None
    rejected = pd.read_parquet(next(store.rejected_dir.glob("*.parquet")))
    assert list(rejected["reason"]) == ["high_below_low"]


def test_reingesting_a_file_adds_nothing_and_a_conflicting_bar_is_quarantined(tmp_path: Path):
    (tmp_path / "EURUSD.csv").write_text(BARS)
    store = ParquetStore(tmp_path / "store")
    ingest_file_to_parquet(store, tmp_path / "EURUSD.csv")
    again = ingest_file_to_parquet(store, tmp_path / "EURUSD.csv")
    assert (again.rows_loaded, again.rows_duplicate) == (0, 4)
    assert len(stored_bars(store)) == 4
    other = BARS.replace("1.08005,0\n2024-02-01 00:01", "1.08004,0\n2024-02-01 00:01")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "EURUSD.csv").write_text(other)
    result = ingest_file_to_parquet(store, tmp_path / "more" / "EURUSD.csv")
    assert result.rows_loaded == 0 and result.rows_duplicate == 3
    assert result.rejected_by_reason[DUPLICATE_CONFLICT] == 1
    assert len(stored_bars(store)) == 4


def test_ingest_cli_writes_parquet_under_the_spark_raw_path(tmp_path: Path, monkeypatch):
    (tmp_path / "EURUSD.csv").write_text(BARS)
    monkeypatch.setenv("BQX_SPARK_RAW_PATH", str(tmp_path / "raw"))
    run = CliRunner().invoke(app, ["ingest", str(tmp_path / "EURUSD.csv"), "--to", "parquet"])
    assert run.exit_code == 0, run.output
    assert len(stored_bars(ParquetStore(tmp_path / "raw"))) == 4
    bad = CliRunner().invoke(app, ["ingest", str(tmp_path / "EURUSD.csv"), "--to", "s3"])
    assert bad.exit_code == 1 and "unknown --to 's3'" in bad.output


def test_a_missing_java_is_one_clear_user_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(BqxUserError, match="needs Java 17"):
        check_spark_session()


def test_a_spark_build_without_parquet_bars_is_one_clear_user_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BQX_HOME", str(tmp_path))
    monkeypatch.delenv("BQX_SPARK_RAW_PATH", raising=False)
    monkeypatch.delenv("BQX_SPARK_HOME", raising=False)
    run = CliRunner().invoke(app, ["build", "--target", "spark"])
    assert run.exit_code == 1
    assert "no parquet bars under" in run.output and "Traceback" not in run.output
