"""Bars in: parse bar files (bar_files), load them into raw.m1_bars with bad rows quarantined
(loader), or write them as parquet for the Spark target (parquet_store)."""
