"""Stage 2.16 links: Granger lead-lag tests of sister pairs on the train period.

discovery (read bqx_60, test, Benjamini-Hochberg, write bqx.lead_lag_relationships) → stats (the
worker-side regressions) → report (heatmap, known-links table)."""
