"""`python -m bqx.cli ...`: the same command line as the `bqx` script."""

from bqx.cli import app

app()
