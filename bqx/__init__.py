"""BQX feature engine: glue code for the embedded database, ingestion, generated data and CLI."""

__version__ = "0.1.0"
