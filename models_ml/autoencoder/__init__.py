"""Stage 2.17: one autoencoder shared by all pairs, and its 64-d embeddings.

training (sample, fit, save) → manifest + artifacts (what a run leaves on disk) → embeddings (encode
every row into bqx.autoencoder_embeddings) → interpretation (clusters, correlations, importance)."""
