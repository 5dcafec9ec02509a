"""`bqx train autoencoder`, `bqx embed`, `bqx interpret embeddings` (stage 2.17)."""

from __future__ import annotations

from bqx.cli._shared import (
    PairsOption,
    SeedOption,
    console,
    count_option,
    database_step,
    grid,
    user_errors,
    value_table,
    verdict,
    with_defaults,
)


@user_errors
def train_autoencoder(
    sample_rows: count_option("Train-period rows, split equally by pair (default 50000).") = None,
    validation_rows: count_option("Validation-period rows (default 12500).") = None,
    epochs: count_option("Most epochs (default 20).") = None,
    seed: SeedOption = None,
):
    """One autoencoder shared by all pairs → $BQX_HOME/artifacts (model, scaler, manifest)."""
    from models_ml.autoencoder.training import AutoencoderConfig
    from models_ml.autoencoder.training import train_autoencoder as train

    config = with_defaults(
        AutoencoderConfig,
        sample_rows=sample_rows,
        validation_rows=validation_rows,
        epochs=epochs,
        seed=seed,
    )
    with database_step() as (settings, conn, on_step):
        result = train(conn, settings, config, on_step)
    m = result.manifest
    metrics, training = m["metrics"], m["training"]
    samples = m["samples"]
    rows = f"{samples['train']['rows']:,} / {samples['validation']['rows']:,}"
    pairs = len(samples["train"]["rows_per_pair"])
    summary = [
        ("input width → embedding", f"{m['input_width']} → {m['embedding_dim']}"),
        ("train / validation rows", f"{rows} ({pairs} pairs)"),
        ("epochs (best)", f"{training['epochs_run']} ({training['best_epoch']})"),
        ("training time", f"{training['seconds']:.1f} s"),
        ("training rows/s", f"{training['rows_per_second']:,.0f}"),
    ]
    summary += [
        (label, f"{metrics[key]:.4f}")
        for label, key in [
            ("reconstruction MAE", "validation_mae"),
            ("mean predictor MAE", "mean_predictor_mae"),
            ("reconstruction MSE", "validation_mse"),
            ("mean predictor MSE", "mean_predictor_mse"),
            ("PCA, 64 components: MAE (linear reference)", "pca_64_mae"),
        ]
    ]
    summary += [
        (f"{name} ({target['target']})", verdict(target["passed"]))
        for name, target in m["targets"].items()
    ]
    table = value_table("autoencoder (validation sample, standardized units)", summary)
    console.print(table)
    console.print(
        f"artifacts: {result.artifacts.directory}\nloss curves: {result.loss_plot}",
        highlight=False,
    )


@user_errors
def embed(
    pairs: PairsOption = None,
):
    """Encode every input row with the trained autoencoder → bqx.autoencoder_embeddings."""
    from bqx.pairs import parse_pairs
    from models_ml.autoencoder.embeddings import EmbedConfig
    from models_ml.autoencoder.embeddings import embed as run_embed

    config = EmbedConfig(pairs=tuple(parse_pairs(pairs)))
    with database_step() as (settings, conn, on_step):
        result = run_embed(conn, settings, config, on_step)
    table = value_table(
        "bqx.autoencoder_embeddings",
        [
            ("pairs", str(len({w.pair for w in result.written}))),
            ("(pair, month) partitions written", str(len(result.written))),
            ("rows", f"{result.rows:,}"),
            ("time", f"{result.seconds:.1f} s"),
            ("rows/s", f"{result.rows_per_second:,.0f}"),
            ("stale partitions emptied", str(len(result.emptied))),
            ("model sha256", result.model_sha256[:16]),
        ],
    )
    console.print(table)


@user_errors
def interpret_embeddings(
    sample_rows: count_option("Train-period rows (default 20000).") = None,
    validation_rows: count_option("Validation-period rows (default 10000).") = None,
    seed: count_option("Seed of sampling, KMeans and permutations (default 7).") = None,
):
    """Clusters, correlations and importance of the embeddings → reports/embeddings.html."""
    from models_ml.autoencoder.interpretation import InterpretationConfig, interpret

    config = with_defaults(
        InterpretationConfig, sample_rows=sample_rows, validation_rows=validation_rows, seed=seed
    )
    with database_step() as (settings, conn, on_step):
        result = interpret(conn, settings, config, on_step)
    table = grid("embedding checks", ["check", "target", "value", "result"], left=2)
    for name, target in result.summary["targets"].items():
        table.add_row(name, target["target"], f"{target['value']:.4f}", verdict(target["passed"]))
    console.print(table)
    console.print(f"report: {result.html}\nsummary: {result.summary_path}", highlight=False)
