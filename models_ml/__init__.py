"""Python ML entrypoints that read dbt-built tables and write results back to the database."""
