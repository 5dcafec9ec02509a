"""AWS Lambda entry point of the online learner (stage 2.19), run every minute by EventBridge.

Each invocation reads the newest minute of features from the PostgreSQL feature views,
predicts and stores, learns the outcomes now known (exactly once), updates the drift monitors
and checkpoints: see bqx_online/service.py. Environment:

  BQX_DATABASE_URL        the PostgreSQL holding the dbt-built features (required in AWS)
  BQX_ONLINE_BACKEND      postgres (default) | aws (DynamoDB + S3 + CloudWatch)
  BQX_ONLINE_PAIRS        comma-separated pairs (default: all 28)
  BQX_ONLINE_TABLE, BQX_ONLINE_BUCKET, BQX_ONLINE_PREFIX   the AWS resources' names
  BQX_HOME                checkpoint files of the postgres back end (under artifacts/online/)
  BQX_ONLINE_CHECKPOINT_KEY  the secret keying checkpoint digests (bqx_online/checkpoint_key.py)

An event may name the minute (`{"minute": "2017-11-02T10:15:00Z"}`); EventBridge's scheduled
events carry `time`, and the handler then steps the newest minute of features at or before it.
"""

from __future__ import annotations

import logging
import os

from bqx import db
from bqx.config import Settings
from bqx_online.features import PostgresFeatures
from bqx_online.runtime import config_from_env, event_minute, open_store
from bqx_online.service import OnlineService

log = logging.getLogger("bqx_online.handler")


def lambda_handler(event, context):
    settings = Settings.from_env()
    config = config_from_env(os.environ)
    backend = os.environ.get("BQX_ONLINE_BACKEND", "postgres")
    asked = event_minute(event)
    conn = db.connect(settings)
    store = open_store(backend, settings, config)
    try:
        if backend == "postgres":
            store.ensure()  # the AWS resources belong to the SAM template
        source = PostgresFeatures(conn, config)
        minute = asked if event and event.get("minute") else source.latest_minute(asked)
        if minute is None:
            log.warning("no features at or before %s: nothing to do", asked)
            return {"status": "no_data"}
        report = OnlineService(config, store, source).step(minute)
    finally:
        store.close()
        conn.close()
    return {
        "status": "ok",
        "minute": report.ts_utc.isoformat(),
        "predicted": report.predicted,
        "already_stored": report.already_stored,
        "learned": report.learned,
        "drift_events": len(report.drift_events),
        "checkpoints": report.checkpoints,
        "seconds": round(report.seconds, 3),
    }
