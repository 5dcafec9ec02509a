"""The `bqx` command line, registered in pipeline order. The only place that prints.

Each stage's commands live in their own module (`database`, `data`, `build`, `granger`,
`live`, `autoencoder`, `multitask`, `online`, `evaluation`, `dashboard`); what they share (consoles,
the one error path, progress bars, dates, config defaults) is in `_shared`. This module only
builds the command tree, so nothing imports it back: no import cycle.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from bqx.cli import (
    autoencoder,
    build,
    dashboard,
    data,
    database,
    evaluation,
    granger,
    live,
    multitask,
    online,
)

app = typer.Typer(
    help="BQX feature engine: FX 1-minute bars → features → models.", no_args_is_help=True
)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def _group(name: str, help_text: str) -> typer.Typer:
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


# 0. the database
db_app = _group("db", "The database: embedded PostgreSQL or BQX_DATABASE_URL.")
for _name in ("start", "stop", "status", "url", "env"):
    db_app.command(_name)(getattr(database, f"db_{_name}"))

# 1. bars in
app.command()(data.synth)
app.command()(data.ingest)
app.command("export-parquet")(data.export_parquet)
app.command()(live.feed)

# 2. features (dbt)
app.command()(build.build)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(build.dbt)
features_app = _group("features", "The feature matrix.")
features_app.command("list")(build.features_list)

# 2.16 lead-lag links for the cross-pair layer
app.command()(granger.granger)

# 2.17 / 2.18 models
train_app = _group("train", "Train models on the dbt-built feature views.")
train_app.command("autoencoder")(autoencoder.train_autoencoder)
app.command()(autoencoder.embed)
interpret_app = _group("interpret", "Reports that explain trained models.")
interpret_app.command("embeddings")(autoencoder.interpret_embeddings)
train_app.command("multitask")(multitask.train_multitask)
predict_app = _group("predict", "Write model predictions into the database.")
predict_app.command("multitask")(multitask.predict_multitask)

# 2.19 online
online_app = _group("online", "The online learner (river ensemble + drift monitor) of stage 2.19.")
online_app.command("replay")(online.replay)
online_app.command("serve")(online.serve)

# evaluation, report, monitoring
app.command("evaluate")(evaluation.evaluate)
app.command("report")(evaluation.report)
app.command("dashboard")(dashboard.dashboard)
