"""`bqx train multitask`, `bqx predict multitask` (stage 2.18)."""

from __future__ import annotations

from bqx.cli._shared import (
    PairsOption,
    SeedOption,
    console,
    count_option,
    database_step,
    grid,
    user_errors,
    with_defaults,
)


@user_errors
def train_multitask(
    pairs: PairsOption = None,
    sample_rows: count_option("Train-period rows per pair (default 20000).") = None,
    validation_rows: count_option("Validation-period rows per pair (default 5000).") = None,
    test_rows: count_option("Test-period rows per pair, scored once (default 10000).") = None,
    epochs: count_option("Most epochs, early stopping (default 50).") = None,
    seed: SeedOption = None,
):
    """One multi-task net per pair (bqx, vol, regime at t+60), a single-task twin, baselines."""
    from bqx.pairs import parse_pairs
    from models_ml.multitask.report import verdicts
    from models_ml.multitask.training import MultitaskConfig
    from models_ml.multitask.training import train_multitask as train

    config = with_defaults(
        MultitaskConfig,
        pairs=tuple(parse_pairs(pairs)),
        skip_missing=pairs is None,
        sample_rows=sample_rows,
        validation_rows=validation_rows,
        test_rows=test_rows,
        epochs=epochs,
        seed=seed,
    )
    with database_step() as (settings, conn, on_step):
        result = train(conn, settings, config, on_step)
    table = grid(
        "multi-task vs single-task vs baselines (test period)",
        ["pair", "model", "bqx MAE", "bqx R²", "direction", "vol R²", "regime acc", "bal. acc"],
        left=2,
    )
    for pair in result.pairs:
        for model in ("multi_task", "single_task", "ridge", "har", "persistence", "train_mean"):
            s = pair.scores[model]
            table.add_row(
                pair.pair,
                model,
                *(
                    "–" if value is None else f"{value:{spec}}"
                    for value, spec in (
                        (s.bqx_mae, ".4f"),
                        (s.bqx_r2, ".3f"),
                        (s.bqx_directional, ".3f"),
                        (s.vol_r2, ".3f"),
                        (s.regime_accuracy, ".3f"),
                        (s.regime_balanced_accuracy, ".3f"),
                    )
                ),
            )
        table.add_row(pair.pair, "majority class", "", "", "", "", f"{pair.majority_rate:.3f}", "")
    console.print(table)
    v = verdicts(result)
    console.print(
        f"multi-task beats single-task (bqx MAE) on {v['multi_task_beats_single_task_pairs']} "
        f"of {v['pairs']} pairs; mean vol R² {v['mean_vol_r2']:.3f} (HAR "
        f"{v['mean_vol_r2_har']:.3f}, persistence {v['mean_vol_r2_persistence']:.3f}); regime "
        f"log-loss {v['mean_regime_log_loss']:.3f} vs train prior {v['mean_prior_log_loss']:.3f}, "
        f"balanced accuracy {v['mean_regime_balanced_accuracy']:.3f}; mean regime "
        f"accuracy {v['mean_regime_accuracy']:.3f} vs majority {v['mean_majority_rate']:.3f} "
        f"(plan > 0.7); {v['mean_training_seconds_per_pair']:.1f} s training per pair"
    )
    for pair, reason in result.skipped.items():
        console.print(f"skipped {pair}: {reason}", highlight=False)
    console.print(
        f"artifacts: {result.artifacts.directory}\n"
        f"report: {settings.reports_dir / 'multitask.html'}",
        highlight=False,
    )


@user_errors
def predict_multitask(
    pairs: PairsOption = None,
):
    """Predictions of the multi-task nets for every input row → bqx.multitask_predictions."""
    from bqx.pairs import parse_pairs
    from models_ml.multitask.predictions import PredictConfig
    from models_ml.multitask.predictions import predict_multitask as run_predict

    config = PredictConfig(pairs=tuple(parse_pairs(pairs)) if pairs else None)
    with database_step() as (settings, conn, on_step):
        result = run_predict(conn, settings, config, on_step)
    console.print(
        f"bqx.multitask_predictions: {result.rows:,} rows in {result.partitions} (pair, month) "
        f"partitions for {len(result.pairs)} pairs in {result.seconds:.1f} s"
    )
