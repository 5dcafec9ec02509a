"""Bars in: open bar files and stream their lines (bar_files), parse and validate them in
chunks (bar_rows), load them into raw.m1_bars with bad rows quarantined (loader: binary COPY
by copy_binary, the staged path for minutes already present in staging), or write them as
parquet for the Spark target (parquet_store)."""
