"""`bqx train autoencoder`, `bqx embed`, `bqx interpret embeddings` (stage 2.17)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bqx.cli._shared import console, database_step, user_errors, verdict, with_defaults


@user_errors
def train_autoencoder(
    sample_rows: Annotated[
        int | None, typer.Option(help="Train-period rows, split equally by pair (default 50000).")
    ] = None,
    validation_rows: Annotated[
        int | None, typer.Option(help="Validation-period rows (default 12500).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Most epochs (default 20).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 7).")] = None,
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
    table = Table(title="autoencoder (validation sample, standardized units)")
    table.add_column("")
    table.add_column("value", justify="right")
    samples = m["samples"]
    table.add_row("input width → embedding", f"{m['input_width']} → {m['embedding_dim']}")
    rows = f"{samples['train']['rows']:,} / {samples['validation']['rows']:,}"
    table.add_row(
        "train / validation rows", f"{rows} ({len(samples['train']['rows_per_pair'])} pairs)"
    )
    table.add_row("epochs (best)", f"{training['epochs_run']} ({training['best_epoch']})")
    table.add_row("training time", f"{training['seconds']:.1f} s")
    table.add_row("training rows/s", f"{training['rows_per_second']:,.0f}")
    table.add_row("reconstruction MAE", f"{metrics['validation_mae']:.4f}")
    table.add_row("mean predictor MAE", f"{metrics['mean_predictor_mae']:.4f}")
    table.add_row("reconstruction MSE", f"{metrics['validation_mse']:.4f}")
    table.add_row("mean predictor MSE", f"{metrics['mean_predictor_mse']:.4f}")
    table.add_row("PCA, 64 components: MAE (linear reference)", f"{metrics['pca_64_mae']:.4f}")
    for name, target in m["targets"].items():
        table.add_row(f"{name} ({target['target']})", verdict(target["passed"]))
    console.print(table)
    console.print(
        f"artifacts: {result.artifacts.directory}\nloss curves: {result.loss_plot}",
        highlight=False,
    )


@user_errors
def embed(
    pairs: Annotated[str | None, typer.Option(help="Comma-separated pairs (default all).")] = None,
):
    """Encode every input row with the trained autoencoder → bqx.autoencoder_embeddings."""
    from bqx.pairs import parse_pairs
    from models_ml.autoencoder.embeddings import EmbedConfig
    from models_ml.autoencoder.embeddings import embed as run_embed

    config = EmbedConfig(pairs=tuple(parse_pairs(pairs)))
    with database_step() as (settings, conn, on_step):
        result = run_embed(conn, settings, config, on_step)
    table = Table(title="bqx.autoencoder_embeddings")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("pairs", str(len({w.pair for w in result.written})))
    table.add_row("(pair, month) partitions written", str(len(result.written)))
    table.add_row("rows", f"{result.rows:,}")
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("rows/s", f"{result.rows_per_second:,.0f}")
    table.add_row("stale partitions emptied", str(len(result.emptied)))
    table.add_row("model sha256", result.model_sha256[:16])
    console.print(table)


@user_errors
def interpret_embeddings(
    sample_rows: Annotated[
        int | None, typer.Option(help="Train-period rows (default 20000).")
    ] = None,
    validation_rows: Annotated[
        int | None, typer.Option(help="Validation-period rows (default 10000).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of sampling, KMeans and permutations (default 7).")
    ] = None,
):
    """Clusters, correlations and importance of the embeddings → reports/embeddings.html."""
    from models_ml.autoencoder.interpretation import InterpretationConfig, interpret

    config = with_defaults(
        InterpretationConfig, sample_rows=sample_rows, validation_rows=validation_rows, seed=seed
    )
    with database_step() as (settings, conn, on_step):
        result = interpret(conn, settings, config, on_step)
    table = Table(title="embedding checks")
    for name in ["check", "target", "value", "result"]:
        table.add_column(name, justify="left" if name in ("check", "target") else "right")
    for name, target in result.summary["targets"].items():
        table.add_row(name, target["target"], f"{target['value']:.4f}", verdict(target["passed"]))
    console.print(table)
    console.print(f"report: {result.html}\nsummary: {result.summary_path}", highlight=False)
