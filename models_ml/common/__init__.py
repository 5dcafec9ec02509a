"""What every ML stage shares: Keras loading, train-period scaling, the partitioned store of
per-row outputs. Metrics live in bqx.metrics (the online learner and the dashboard use them too)."""
