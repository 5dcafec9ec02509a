"""Stage 2.18: per-pair multi-task nets (bqx, vol and regime at t+60).

data (inputs ⨝ embeddings ⨝ targets) → net (the Keras model) → training (fit, baselines) → scoring →
artifacts + report → predictions (bqx.multitask_predictions)."""
