"""Build the pieces from settings at the edge: the store of a back end, the config from the
Lambda's environment, the minute an event asks for."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from bqx import db
from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx.pairs import parse_pairs
from bqx_online.checkpoint_key import CheckpointKey
from bqx_online.config import OnlineConfig
from bqx_online.storage import OnlineStore

BACKENDS = ("postgres", "aws")


def open_store(backend: str, settings: Settings, config: OnlineConfig) -> OnlineStore:
    """The store of `backend`: 'postgres' (default) or 'aws'."""
    key = CheckpointKey.load(os.environ, settings.artifacts_dir / "online")
    if backend == "postgres":
        from bqx_online.storage_postgres import PostgresStore

        return PostgresStore(
            db.connect(settings), settings.artifacts_dir / "online", config.keep_checkpoints, key
        )
    if backend == "aws":
        from bqx_online.storage_aws import AwsStore

        return AwsStore(aws_config_from_env(os.environ, config.keep_checkpoints), key)
    raise BqxUserError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")


def aws_config_from_env(env: Mapping[str, str], keep: int = 3):
    """AwsConfig from BQX_ONLINE_TABLE / _BUCKET / _PREFIX and AWS_REGION; boto3 itself reads
    AWS_ENDPOINT_URL and the credentials chain."""
    from bqx_online.storage_aws import AwsConfig

    defaults = AwsConfig()
    return AwsConfig(
        table=env.get("BQX_ONLINE_TABLE", defaults.table),
        bucket=env.get("BQX_ONLINE_BUCKET", defaults.bucket),
        prefix=env.get("BQX_ONLINE_PREFIX", defaults.prefix),
        region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", defaults.region)),
        endpoint_url=env.get("BQX_ONLINE_ENDPOINT_URL") or None,
        keep_checkpoints=keep,
    )


def config_from_env(env: Mapping[str, str]) -> OnlineConfig:
    """The handler's config: BQX_ONLINE_PAIRS (default all 28), BQX_ONLINE_ARF_MODELS,
    BQX_ONLINE_FEATURES (comma-separated columns, `all` for every one; default: the compact
    list of config.DEFAULT_FEATURES)."""
    config = OnlineConfig(pairs=tuple(parse_pairs(env.get("BQX_ONLINE_PAIRS") or None)))
    features = env.get("BQX_ONLINE_FEATURES", "").strip()
    if features:
        names = () if features == "all" else tuple(f.strip() for f in features.split(","))
        config = replace(config, features=tuple(name for name in names if name))
    if env.get("BQX_ONLINE_ARF_MODELS"):
        ensemble = replace(config.ensemble, arf_models=int(env["BQX_ONLINE_ARF_MODELS"]))
        config = replace(config, ensemble=ensemble)
    return config


def event_minute(event: Mapping | None) -> datetime | None:
    """The minute an invocation names: `minute` (ISO), else EventBridge's `time`, else None."""
    if not event:
        return None
    text = event.get("minute") or event.get("time")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise BqxUserError(f"bad minute {text!r} in the event: use ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
