"""The `bqx` command line. The only place that prints; user errors become one line + exit 1."""

from __future__ import annotations

import functools
import logging
import sys
from collections import Counter
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bqx import cli_dashboard, cli_online, cli_report, db
from bqx.config import Settings
from bqx.errors import BqxUserError

app = typer.Typer(
    help="BQX feature engine: FX 1-minute bars → features → models.", no_args_is_help=True
)
db_app = typer.Typer(
    help="The database: embedded PostgreSQL or BQX_DATABASE_URL.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
features_app = typer.Typer(help="The feature matrix.", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(cli_online.online_app, name="online")

console = Console()
err_console = Console(stderr=True)


def user_errors(func):
    """Turn BqxUserError into one clear line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BqxUserError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _progress(unit: str = "") -> Progress:
    """The progress display of every long command: description, bar, count, elapsed time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}" + (f" {unit}" if unit else "")),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _stage_bars(progress: Progress, labels: dict[str, str] | None = None):
    """A ProgressCallback (stage, done, total) drawing one bar per stage."""
    bars: dict[str, int] = {}
    labels = labels or {}

    def on_step(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress.add_task(labels.get(stage, stage), total=total)
        progress.update(bars[stage], completed=done)

    return on_step


@contextmanager
def _database_step(labels: dict[str, str] | None = None):
    """(settings, connection, progress callback) for a long command on the configured
    database; the bars go away and the connection is closed when the block ends."""
    settings = Settings.from_env()
    conn = db.connect(settings)
    try:
        with _progress() as progress:
            yield settings, conn, _stage_bars(progress, labels)
    finally:
        conn.close()


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


# ---------------------------------------------------------------------------- db
@db_app.command("start")
@user_errors
def db_start():
    """Start the embedded PostgreSQL (no-op with BQX_DATABASE_URL)."""
    settings = Settings.from_env()
    url = db.database_url(settings)
    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select version()")
        version = " ".join(cur.fetchone()[0].split()[:2])
    where = "external" if settings.database_url else f"embedded at {settings.pgdata}"
    console.print(f"database ready ({where}): {version}")
    console.print(url, highlight=False)


@db_app.command("stop")
@user_errors
def db_stop():
    """Stop the embedded PostgreSQL."""
    settings = Settings.from_env()
    if settings.database_url:
        raise BqxUserError("BQX_DATABASE_URL is set: that server is not ours to stop")
    stopped = db.stop_embedded(settings)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
@user_errors
def db_status():
    """Say whether the database is reachable; exit 1 when it is not."""
    settings = Settings.from_env()
    if settings.database_url:
        db.connect(settings).close()
        console.print("external database reachable")
        return
    url = db.embedded_status(settings)
    if url is None:
        console.print(f"embedded database not running ({settings.pgdata})")
        raise typer.Exit(1)
    console.print(f"embedded database running: {url}", highlight=False)


@db_app.command("url")
@user_errors
def db_url():
    """Print the database URL (starting the embedded server if needed)."""
    typer.echo(db.database_url(Settings.from_env()))


@db_app.command("env")
@user_errors
def db_env():
    """Print shell exports that let plain `dbt` reach the database: eval "$(bqx db env)"."""
    params = db.parse_database_url(db.database_url(Settings.from_env()))
    for key, value in params.as_dbt_env().items():
        typer.echo(f"export {key}='{value}'")


# ---------------------------------------------------------------------------- synth
@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/synth"),
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-01",
    days: Annotated[int, typer.Option(help="Calendar days.")] = 21,
    pairs: Annotated[
        str | None, typer.Option(help="Comma-separated pairs (default all 28).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
):
    """Write a generated market: <PAIR>.csv.gz for each pair and ground_truth.json."""
    from bqx.pairs import parse_pairs
    from bqx.synth import SynthConfig, write_market

    config = SynthConfig(
        start=parse_date(start), days=days, pairs=tuple(parse_pairs(pairs)), seed=seed
    )
    with console.status(f"generating {len(config.pairs)} pairs × {days} days"):
        truth = write_market(config, out)
    links = ", ".join(
        f"{link['leader']}→{link['follower']} {link['lag_minutes']}m" for link in truth["links"]
    )
    console.print(f"wrote {len(config.pairs)} pair files and ground_truth.json to {out}")
    console.print(f"planted lead-lag links: {links}")


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BqxUserError(f"bad date {text!r}: use YYYY-MM-DD") from None


# ---------------------------------------------------------------------------- ingest
@app.command()
@user_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Bar files or directories.")],
    file_format: Annotated[
        str, typer.Option("--format", help="auto | generic | histdata")
    ] = "auto",
    tz: Annotated[
        str | None,
        typer.Option(help="Clock of the file (default: America/New_York for HistData, UTC else)."),
    ] = None,
    pair: Annotated[str | None, typer.Option(help="Pair, when the file name does not say.")] = None,
    to: Annotated[
        str,
        typer.Option(
            help="postgres: raw.m1_bars; parquet: files partitioned by pair and month for the "
            "spark target, under BQX_SPARK_RAW_PATH (default $BQX_HOME/spark/raw)."
        ),
    ] = "postgres",
):
    """Load bar files into raw.m1_bars; bad lines go to raw.m1_bars_rejected."""
    from bqx.ingest import expand_paths, ingest_file
    from bqx.pairs import validate_pair

    if to not in ("postgres", "parquet"):
        raise BqxUserError(f"unknown --to {to!r}: use postgres or parquet")
    if pair:
        validate_pair(pair)
    files = expand_paths(paths)
    settings = Settings.from_env()
    if to == "parquet":
        _ingest_to_parquet(settings, files, file_format=file_format, pair=pair, tz=tz)
        return
    conn = db.connect(settings)
    results = []
    try:
        with _progress("files") as progress:
            task = progress.add_task("ingesting", total=len(files))
            for path in files:
                progress.update(task, description=f"ingesting {path.name}")
                results.append(ingest_file(conn, path, file_format=file_format, pair=pair, tz=tz))
                progress.advance(task)
    finally:
        conn.close()
        if results:
            console.print(_ingest_summary(results))
            rejections = _rejections_table(results)
            if rejections is not None:
                console.print(rejections)


def _ingest_to_parquet(settings: Settings, files: list[Path], **options) -> None:
    from bqx.dbt_runner import SparkPaths
    from bqx.parquet_store import ParquetStore, ingest_file_to_parquet

    store = ParquetStore(Path(SparkPaths.of(settings).raw))
    results = []
    with _progress("files") as progress:
        task = progress.add_task("writing parquet", total=len(files))
        for path in files:
            progress.update(task, description=f"parquet {path.name}")
            results.append(ingest_file_to_parquet(store, path, **options))
            progress.advance(task)
    console.print(_ingest_summary(results))
    rejections = _rejections_table(results)
    if rejections is not None:
        rejections.title = f"rejected lines by reason (see {store.rejected_dir})"
        console.print(rejections)
    console.print(f"bars under {store.bars_dir}: `bqx build --target spark` reads them")


def _ingest_summary(results) -> Table:
    table = Table(title="ingest summary")
    for name in ["file", "format", "read", "loaded", "duplicates", "rejected"]:
        table.add_column(name, justify="left" if name in ("file", "format") else "right")
    for r in results:
        counts = (r.rows_read, r.rows_loaded, r.rows_duplicate, r.rows_rejected)
        table.add_row(r.source, r.file_format, *(f"{v:,}" for v in counts))
    if len(results) > 1:
        totals = [
            sum(getattr(r, name) for r in results)
            for name in ("rows_read", "rows_loaded", "rows_duplicate", "rows_rejected")
        ]
        table.add_row("total", "", *(f"{v:,}" for v in totals), style="bold")
    return table


def _rejections_table(results) -> Table | None:
    by_reason: Counter = Counter()
    for r in results:
        by_reason.update(r.rejected_by_reason)
    if not by_reason:
        return None
    table = Table(title="rejected lines by reason (see raw.m1_bars_rejected)")
    table.add_column("reason")
    table.add_column("lines", justify="right")
    for reason, n in by_reason.most_common():
        table.add_row(reason, f"{n:,}")
    return table


# ---------------------------------------------------------------------------- build
@app.command()
@user_errors
def build(
    pairs: Annotated[str | None, typer.Option(help="Comma-separated pairs (default all).")] = None,
    months: Annotated[
        str | None, typer.Option(help="Rebuild only these months: YYYY-MM..YYYY-MM.")
    ] = None,
    select: Annotated[str | None, typer.Option(help="dbt node selection.")] = None,
    train_end: Annotated[
        str | None,
        typer.Option(help="Pin the end of the train period, YYYY-MM-DD (default: 60% of data)."),
    ] = None,
    validation_end: Annotated[
        str | None,
        typer.Option(help="Pin the end of the validation period, YYYY-MM-DD (default: 80%)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="profiles.yml output: postgres (default), spark (local session over the "
            "parquet bars) or a cluster output (default: $BQX_DBT_TARGET)."
        ),
    ] = None,
):
    """Run the dbt build (models + tests) against the configured database."""
    from bqx.dbt_runner import BuildScope, check_spark_raw, dbt_target, run_dbt

    scope = BuildScope.parse(
        pairs=pairs, months=months, train_end=train_end, validation_end=validation_end
    )
    args = ["build", *(["--select", select] if select else [])]
    settings = Settings.from_env()
    check_spark_raw(settings, dbt_target(target))
    code = run_dbt(settings, args, scope=scope, target=target)
    if code != 0:
        raise typer.Exit(code)


@app.command("export-parquet")
@user_errors
def export_parquet(
    out: Annotated[
        Path | None,
        typer.Option(help="Parquet root (default BQX_SPARK_RAW_PATH, else $BQX_HOME/spark/raw)."),
    ] = None,
    pairs: Annotated[str | None, typer.Option(help="Comma-separated pairs (default all).")] = None,
):
    """Copy raw.m1_bars (and bqx.lead_lag_relationships) to parquet for the spark target."""
    from bqx.dbt_runner import SparkPaths
    from bqx.pairs import parse_pairs
    from bqx.parquet_store import ParquetStore, export_from_postgres

    settings = Settings.from_env()
    store = ParquetStore(out or Path(SparkPaths.of(settings).raw))
    chosen = tuple(parse_pairs(pairs)) if pairs else ()
    conn = db.connect(settings)
    try:
        with console.status("exporting raw.m1_bars to parquet"):
            result = export_from_postgres(conn, store, chosen)
    finally:
        conn.close()
    console.print(
        f"wrote {result.rows:,} bars of {len(result.pairs)} pairs in {result.partitions} "
        f"(pair, month) partitions under {store.bars_dir}"
    )
    if result.lead_lag_rows is None:
        console.print(
            "no bqx.lead_lag_relationships yet (run `bqx granger`): lead-lag slots stay 0"
        )
    else:
        console.print(f"wrote {result.lead_lag_rows} Granger links under {store.lead_lag_dir}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@user_errors
def dbt(ctx: typer.Context):
    """Run any dbt command against the configured database: bqx dbt test --select ..."""
    from bqx.dbt_runner import run_dbt

    code = run_dbt(Settings.from_env(), list(ctx.args))
    if code != 0:
        raise typer.Exit(code)


# ---------------------------------------------------------------------------- granger
GRANGER_TABLE_ROWS = 40


@app.command()
@user_errors
def granger(
    pairs: Annotated[
        str | None, typer.Option(help="Comma-separated pairs (default all 28).")
    ] = None,
    max_lag: Annotated[int, typer.Option(help="Longest lag tested, in minutes.")] = 15,
    alpha: Annotated[
        float, typer.Option(help="False discovery rate (Benjamini-Hochberg over all tests).")
    ] = 0.05,
    max_rows: Annotated[
        int, typer.Option(help="Most recent training rows per ordered pair.")
    ] = 60_000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    vol_window: Annotated[
        int, typer.Option(help="Scale changes by their trailing RMS over N minutes (0: raw).")
    ] = 30,
):
    """Granger lead-lag tests of sister pairs on the train period → bqx.lead_lag_relationships."""
    from bqx.pairs import parse_pairs
    from models_ml.granger import GrangerConfig, discover, write_results
    from models_ml.granger_report import write_heatmap, write_known_links

    config = GrangerConfig(
        pairs=tuple(parse_pairs(pairs)),
        max_lag=max_lag,
        alpha=alpha,
        max_rows=max_rows,
        workers=workers,
        vol_window=vol_window,
    )
    labels = {"reading": "reading bqx_60", "testing": "testing ordered pairs"}
    with _database_step(labels) as (settings, conn, on_step):
        result = discover(conn, config, on_step)
        write_results(conn, result, config.pairs)
    heatmap = write_heatmap(result, settings.reports_dir / "granger_heatmap.png")
    known = write_known_links(result, settings.reports_dir / "granger_known_links.md")
    console.print(_granger_table(result))
    links = result.relationships
    if len(links) > GRANGER_TABLE_ROWS:
        console.print(f"… and {len(links) - GRANGER_TABLE_ROWS} more in bqx.lead_lag_relationships")
    console.print(
        f"{len(links)} of {len(result.best)} ordered sister pairs significant "
        f"({len(result.tests):,} tests, train period {result.train.start_utc:%Y-%m-%d %H:%M} "
        f"to {result.train.end_utc:%Y-%m-%d %H:%M} UTC)"
    )
    for leader, follower, reason in result.skipped:
        console.print(f"not tested: {leader} → {follower} ({reason})")
    console.print(f"heatmap: {heatmap}\nknown links: {known}", highlight=False)


def _granger_table(result) -> Table:
    from models_ml.granger_report import summary_rows

    table = Table(title=f"lead-lag relationships (FDR {result.alpha:g}), strongest first")
    for name in ["leader", "follower", "lag (min)", "F", "p_adjusted", "effect size"]:
        table.add_column(name, justify="left" if name in ("leader", "follower") else "right")
    for row in summary_rows(result, limit=GRANGER_TABLE_ROWS):
        table.add_row(*row)
    return table


# ---------------------------------------------------------------------------- features
@features_app.command("list")
@user_errors
def features_list(
    columns: Annotated[bool, typer.Option("--columns", help="List every column.")] = False,
):
    """Families and column count of bqx.ml_feature_matrix, read from the database."""
    from bqx.features import family_of, matrix_columns

    with db.connect(Settings.from_env()) as conn:
        found = matrix_columns(conn)
    if not found:
        raise BqxUserError("bqx.ml_feature_matrix does not exist yet: run `bqx build` first")
    if columns:
        for column in found:
            typer.echo(f"{column.name}\t{column.data_type}")
        return
    families = Counter(family_of(column.name) for column in found)
    table = Table(title="bqx.ml_feature_matrix")
    table.add_column("family")
    table.add_column("columns", justify="right")
    for family, n in families.items():
        table.add_row(family, str(n))
    console.print(table)
    console.print(f"{len(found)} feature columns (plus pair, ts_utc)")


# ---------------------------------------------------------------------------- autoencoder
train_app = typer.Typer(help="Train models on the dbt-built feature views.", no_args_is_help=True)
app.add_typer(train_app, name="train")
interpret_app = typer.Typer(help="Reports that explain trained models.", no_args_is_help=True)
app.add_typer(interpret_app, name="interpret")


def _verdict(passed: bool) -> str:
    return "[green]pass[/]" if passed else "[red]FAIL[/]"


@train_app.command("autoencoder")
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
    from models_ml.autoencoder import AutoencoderConfig
    from models_ml.autoencoder import train_autoencoder as train

    chosen = dict(
        sample_rows=sample_rows, validation_rows=validation_rows, epochs=epochs, seed=seed
    )
    config = AutoencoderConfig(**{k: v for k, v in chosen.items() if v is not None})
    with _database_step() as (settings, conn, on_step):
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
        table.add_row(f"{name} ({target['target']})", _verdict(target["passed"]))
    console.print(table)
    console.print(
        f"artifacts: {result.artifacts.directory}\nloss curves: {result.loss_plot}",
        highlight=False,
    )


@app.command()
@user_errors
def embed(
    pairs: Annotated[str | None, typer.Option(help="Comma-separated pairs (default all).")] = None,
):
    """Encode every input row with the trained autoencoder → bqx.autoencoder_embeddings."""
    from bqx.pairs import parse_pairs
    from models_ml.embeddings import EmbedConfig
    from models_ml.embeddings import embed as run_embed

    config = EmbedConfig(pairs=tuple(parse_pairs(pairs)))
    with _database_step() as (settings, conn, on_step):
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


@interpret_app.command("embeddings")
@user_errors
def interpret_embeddings(
    sample_rows: Annotated[int, typer.Option(help="Train-period rows.")] = 20_000,
    validation_rows: Annotated[int, typer.Option(help="Validation-period rows.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of sampling, KMeans and permutations.")] = 7,
):
    """Clusters, correlations and importance of the embeddings → reports/embeddings.html."""
    from models_ml.embedding_interpretation import InterpretationConfig, interpret

    config = InterpretationConfig(
        sample_rows=sample_rows, validation_rows=validation_rows, seed=seed
    )
    with _database_step() as (settings, conn, on_step):
        result = interpret(conn, settings, config, on_step)
    table = Table(title="embedding checks")
    for name in ["check", "target", "value", "result"]:
        table.add_column(name, justify="left" if name in ("check", "target") else "right")
    for name, target in result.summary["targets"].items():
        table.add_row(name, target["target"], f"{target['value']:.4f}", _verdict(target["passed"]))
    console.print(table)
    console.print(f"report: {result.html}\nsummary: {result.summary_path}", highlight=False)


# ---------------------------------------------------------------------------- dashboard
app.command("dashboard")(cli_dashboard.dashboard)
app.command("evaluate")(cli_report.evaluate)
app.command("report")(cli_report.report)


# ---------------------------------------------------------------------------- multi-task
predict_app = typer.Typer(help="Write model predictions into the database.", no_args_is_help=True)
app.add_typer(predict_app, name="predict")


@train_app.command("multitask")
@user_errors
def train_multitask(
    pairs: Annotated[
        str | None, typer.Option(help="Comma-separated pairs (default: all with data).")
    ] = None,
    sample_rows: Annotated[int, typer.Option(help="Train-period rows per pair.")] = 20_000,
    validation_rows: Annotated[int, typer.Option(help="Validation-period rows per pair.")] = 5_000,
    test_rows: Annotated[
        int, typer.Option(help="Test-period rows per pair (scored once).")
    ] = 10_000,
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping, patience 10).")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
):
    """One multi-task net per pair (bqx, vol, regime at t+60), a single-task twin, baselines."""
    from bqx.pairs import parse_pairs
    from models_ml.multitask import MultitaskConfig
    from models_ml.multitask import train_multitask as train
    from models_ml.multitask_report import verdicts

    config = MultitaskConfig(
        pairs=tuple(parse_pairs(pairs)),
        skip_missing=pairs is None,
        sample_rows=sample_rows,
        validation_rows=validation_rows,
        test_rows=test_rows,
        epochs=epochs,
        seed=seed,
    )
    with _database_step() as (settings, conn, on_step):
        result = train(conn, settings, config, on_step)
    table = Table(title="multi-task vs single-task vs baselines (test period)")
    for name in ["pair", "model", "bqx MAE", "bqx R²", "direction", "vol R²", "regime acc"]:
        table.add_column(name, justify="left" if name in ("pair", "model") else "right")
    for pair in result.pairs:
        for model in ("multi_task", "single_task", "ridge", "persistence"):
            s = pair.scores[model]
            table.add_row(
                pair.pair,
                model,
                f"{s.bqx_mae:.4f}",
                f"{s.bqx_r2:.3f}",
                f"{s.bqx_directional:.3f}",
                "–" if s.vol_r2 is None else f"{s.vol_r2:.3f}",
                "–" if s.regime_accuracy is None else f"{s.regime_accuracy:.3f}",
            )
        table.add_row(pair.pair, "majority class", "", "", "", "", f"{pair.majority_rate:.3f}")
    console.print(table)
    v = verdicts(result)
    console.print(
        f"multi-task beats single-task (bqx MAE) on {v['multi_task_beats_single_task_pairs']} "
        f"of {v['pairs']} pairs; mean vol R² {v['mean_vol_r2']:.3f} (plan > 0.7); mean regime "
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


@predict_app.command("multitask")
@user_errors
def predict_multitask(
    pairs: Annotated[
        str | None, typer.Option(help="Comma-separated pairs (default: every trained pair).")
    ] = None,
):
    """Predictions of the multi-task nets for every input row → bqx.multitask_predictions."""
    from bqx.pairs import parse_pairs
    from models_ml.multitask_predictions import PredictConfig
    from models_ml.multitask_predictions import predict_multitask as run_predict

    config = PredictConfig(pairs=tuple(parse_pairs(pairs)) if pairs else None)
    with _database_step() as (settings, conn, on_step):
        result = run_predict(conn, settings, config, on_step)
    console.print(
        f"bqx.multitask_predictions: {result.rows:,} rows in {result.partitions} (pair, month) "
        f"partitions for {len(result.pairs)} pairs in {result.seconds:.1f} s"
    )


def run() -> None:  # pragma: no cover - console entry for `python -m bqx`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
