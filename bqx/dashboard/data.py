"""What the monitoring dashboard shows, read from the online learner's tables.

Windows ("last hour / day / week") are anchored on the newest `ts_utc` in online_predictions,
not on the wall clock: replays run on historical market time. Accuracy windows end at the
newest prediction whose outcome is already known (realized is set), since the last horizon's
worth of predictions cannot be scored yet. Series and counts are aggregated in SQL, so a
week of 28 pairs reaches Python as a few hundred rows; the accuracy windows' scores come
from bqx.metrics (one definition of each metric) over the window's scored values, which
reach Python as arrays (a week of 28 pairs: ~280,000 values, ~10 ms to read here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from bqx.dashboard.live import LiveStatus, load_live_status
from bqx.metrics import directional_accuracy, mae, rmse
from bqx.pairs import PAIRS, validate_pair

log = logging.getLogger(__name__)

# (label, PostgreSQL interval) of the accuracy windows, shortest first
WINDOWS: tuple[tuple[str, str], ...] = (("hour", "1 hour"), ("day", "1 day"), ("week", "7 days"))


@dataclass(frozen=True)
class DashboardConfig:
    """What to show. pair None = all pairs; schema holds the online learner's tables."""

    pair: str | None = None
    schema: str = "bqx"
    history: str = "7 days"  # span of the time-series charts, before the newest prediction
    bucket: str = "hour"  # date_trunc unit of the time-series charts
    drift_events_shown: int = 50
    now_utc: datetime | None = None  # the wall clock of the feed's age; None = the database's

    def __post_init__(self) -> None:
        if self.pair is not None:
            object.__setattr__(self, "pair", validate_pair(self.pair))


@dataclass(frozen=True)
class WindowAccuracy:
    window: str
    horizon_minutes: int
    scored_until: datetime  # the window ends at the newest prediction with a known outcome
    predictions: int
    scored: int  # predictions whose realized value is known
    mae: float | None
    rmse: float | None
    static_mae: float | None  # the static (multi-task) model on the same rows
    hit_rate: float | None  # bqx.metrics.directional_accuracy of the scored rows


def window_accuracy(
    window: str,
    horizon_minutes: int,
    scored_until: datetime,
    predictions: int,
    scored: int,
    predicted: list | None,
    realized: list | None,
    static: list | None,
) -> WindowAccuracy:
    """A window's scores from its scored rows, with the project's metrics (bqx.metrics)."""
    pred, real, stat = (np.array(v or [], dtype=np.float64) for v in (predicted, realized, static))
    has_static = ~np.isnan(stat)

    def known(value: float) -> float | None:
        return None if np.isnan(value) else value

    return WindowAccuracy(
        window=window,
        horizon_minutes=horizon_minutes,
        scored_until=scored_until,
        predictions=predictions,
        scored=scored,
        mae=known(mae(real, pred)),
        rmse=known(rmse(real, pred)),
        static_mae=known(mae(real[has_static], stat[has_static])),
        hit_rate=known(directional_accuracy(real, pred)),
    )


@dataclass(frozen=True)
class PairSummary:
    pair: str
    scored_day: int
    mae_day: float | None
    static_mae_day: float | None
    updates_hour: int
    updates_day: int
    updates_week: int
    last_learned_utc: datetime | None
    drift_events_week: int


@dataclass(frozen=True)
class DriftEvent:
    event_id: int
    pair: str
    ts_utc: datetime
    detector: str
    evidence: str


@dataclass
class DashboardData:
    """Everything one page needs. newest_utc None means there is nothing to show yet."""

    newest_utc: datetime | None
    pairs: list[str] = field(default_factory=list)
    accuracy: list[WindowAccuracy] = field(default_factory=list)
    # time series: (bucket start, horizon, online MAE, static MAE, scored rows)
    accuracy_series: list[tuple[datetime, int, float | None, float | None, int]] = field(
        default_factory=list
    )
    # (bucket start, member, mean weight)
    weight_series: list[tuple[datetime, str, float]] = field(default_factory=list)
    # (member, latest mean weight, latest mean recent MAE)
    latest_weights: list[tuple[str, float, float | None]] = field(default_factory=list)
    drift_events: list[DriftEvent] = field(default_factory=list)
    drift_event_count: int = 0
    # (bucket start, learning updates, weight updates)
    update_series: list[tuple[datetime, int, int]] = field(default_factory=list)
    pair_summaries: list[PairSummary] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    live: LiveStatus | None = None  # the live loop's feed age and latency (dashboard/live.py)

    @property
    def is_empty(self) -> bool:
        return self.newest_utc is None


TABLES = ("online_predictions", "ensemble_weights", "drift_events")


def load_dashboard_data(
    conn: psycopg2.extensions.connection, config: DashboardConfig
) -> DashboardData:
    """Read the monitoring views; an absent or empty online_predictions gives an empty result."""
    missing = [name for name in TABLES if not _table_exists(conn, config.schema, name)]
    if "online_predictions" in missing:
        live = load_live_status(conn, None, config.now_utc)
        return DashboardData(newest_utc=None, missing_tables=missing, live=live)
    t = {name: sql.Identifier(config.schema, name) for name in TABLES}
    pairs = [config.pair] if config.pair else list(PAIRS)
    newest = _scalar(conn, NEWEST_SQL, {"pairs": pairs}, p=t["online_predictions"])
    live = load_live_status(conn, newest, config.now_utc)
    if newest is None:
        return DashboardData(newest_utc=None, missing_tables=missing, live=live)
    params = {
        "pairs": pairs,
        "newest": newest,
        "history": config.history,
        "bucket": config.bucket,
        "labels": [label for label, _ in WINDOWS],
        "spans": [span for _, span in WINDOWS],
        "limit": config.drift_events_shown,
    }
    data = DashboardData(newest_utc=newest, missing_tables=missing, live=live)
    data.pairs = [r[0] for r in _rows(conn, PAIRS_SQL, params, p=t["online_predictions"])]
    data.accuracy = [
        window_accuracy(*row)
        for row in _rows(conn, ACCURACY_SQL, params, p=t["online_predictions"])
    ]
    data.accuracy_series = _rows(conn, ACCURACY_SERIES_SQL, params, p=t["online_predictions"])
    if "ensemble_weights" not in missing:
        data.weight_series = _rows(conn, WEIGHT_SERIES_SQL, params, w=t["ensemble_weights"])
        data.latest_weights = _rows(conn, LATEST_WEIGHTS_SQL, params, w=t["ensemble_weights"])
    if "drift_events" not in missing:
        data.drift_events = [
            DriftEvent(*row) for row in _rows(conn, DRIFT_EVENTS_SQL, params, d=t["drift_events"])
        ]
        data.drift_event_count = _scalar(conn, DRIFT_COUNT_SQL, params, d=t["drift_events"])
    data.update_series = _update_series(conn, params, t, missing)
    drift_by_pair = (
        dict(_rows(conn, DRIFT_BY_PAIR_SQL, params, d=t["drift_events"]))
        if "drift_events" not in missing
        else {}
    )
    data.pair_summaries = [
        PairSummary(*row, drift_events_week=drift_by_pair.get(row[0], 0))
        for row in _rows(conn, PAIR_SUMMARY_SQL, params, p=t["online_predictions"])
    ]
    log.info("dashboard data as of %s: %d pairs", newest, len(data.pairs))
    return data


def _update_series(conn, params: dict, t: dict, missing: list[str]) -> list[tuple]:
    """(bucket, learning updates, weight updates), both counted on the market clock."""
    learned = dict(_rows(conn, LEARN_SERIES_SQL, params, p=t["online_predictions"]))
    reweighted = (
        dict(_rows(conn, REWEIGHT_SERIES_SQL, params, w=t["ensemble_weights"]))
        if "ensemble_weights" not in missing
        else {}
    )
    buckets = sorted(set(learned) | set(reweighted))
    return [(b, learned.get(b, 0), reweighted.get(b, 0)) for b in buckets]


def _table_exists(conn: psycopg2.extensions.connection, schema: str, name: str) -> bool:
    qualified = sql.Identifier(schema, name).as_string(conn)
    return _scalar(conn, sql.SQL("select to_regclass(%(name)s) is not null"), {"name": qualified})


def _scalar(conn, query: sql.Composable, params: dict, **tables: sql.Composable):
    return _rows(conn, query, params, **tables)[0][0]


def _rows(conn, query: sql.Composable, params: dict, **tables: sql.Composable) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query.format(**tables) if tables else query, params)
        rows = cur.fetchall()
    conn.rollback()  # read-only: never leave a transaction open on a long-lived connection
    return [tuple(row) for row in rows]


# Every query below filters on %(pairs)s and anchors on %(newest)s. `pair = any(...)` with a
# ts_utc range is an index range scan per pair on the (pair, ts_utc, ...) primary keys.
_PAIR = "pair = any(%(pairs)s)"

# the newest minute per pair from the primary key's index, instead of a scan of the table
NEWEST_SQL = sql.SQL(
    """
    select max(newest.ts_utc)
    from unnest(%(pairs)s::text[]) as u (pair)
    cross join lateral (
        select max(p.ts_utc) as ts_utc from {p} as p where p.pair = u.pair
    ) as newest
    """
)

PAIRS_SQL = sql.SQL(
    f"select distinct pair from {{p}} where {_PAIR} "
    "and ts_utc > %(newest)s - %(history)s::interval order by pair"
)

# Accuracy windows end at the newest prediction whose outcome is known (per horizon): with a
# 60-minute horizon, the hour before the newest prediction has no realized values yet.
ACCURACY_SQL = sql.SQL(
    f"""
    with windows as (
        select label, span::interval as span, ordinality
        from unnest(%(labels)s::text[], %(spans)s::text[]) with ordinality as w(label, span)
    ),
    anchors as (
        select horizon_minutes, max(ts_utc) as scored_until
        from {{p}}
        where
            {_PAIR} and realized is not null
            and ts_utc > %(newest)s - %(history)s::interval and ts_utc <= %(newest)s
        group by horizon_minutes
    )
    select
        w.label,
        a.horizon_minutes,
        a.scored_until,
        count(*)::int,
        count(p.realized)::int,
        array_agg(p.prediction) filter (where p.realized is not null),
        array_agg(p.realized) filter (where p.realized is not null),
        array_agg(p.static_prediction) filter (where p.realized is not null)
    from windows as w
    cross join anchors as a
    inner join {{p}} as p
        on
            p.horizon_minutes = a.horizon_minutes
            and p.ts_utc > a.scored_until - w.span
            and p.ts_utc <= a.scored_until
    where p.pair = any(%(pairs)s)
    group by w.label, w.ordinality, a.horizon_minutes, a.scored_until
    order by w.ordinality, a.horizon_minutes
    """
)

ACCURACY_SERIES_SQL = sql.SQL(
    f"""
    select
        date_trunc(%(bucket)s, ts_utc, 'UTC') as bucket,
        horizon_minutes,
        avg(abs(prediction - realized)),
        avg(abs(static_prediction - realized)),
        count(realized)::int
    from {{p}}
    where {_PAIR} and ts_utc > %(newest)s - %(history)s::interval and realized is not null
    group by 1, 2
    order by 1, 2
    """
)

WEIGHT_SERIES_SQL = sql.SQL(
    f"""
    select date_trunc(%(bucket)s, ts_utc, 'UTC'), member, avg(weight)
    from {{w}}
    where {_PAIR} and ts_utc > %(newest)s - %(history)s::interval and ts_utc <= %(newest)s
    group by 1, 2
    order by 1, 2
    """
)

# the weights each pair had at its own latest update, averaged over pairs
LATEST_WEIGHTS_SQL = sql.SQL(
    f"""
    with latest as (
        select pair, max(ts_utc) as ts_utc from {{w}}
        where {_PAIR} and ts_utc <= %(newest)s
        group by pair
    )
    select w.member, avg(w.weight), avg(w.recent_mae)
    from {{w}} as w
    inner join latest using (pair, ts_utc)
    group by w.member
    order by avg(w.weight) desc
    """
)

DRIFT_EVENTS_SQL = sql.SQL(
    f"""
    select event_id, pair, ts_utc, detector, coalesce(evidence::text, '')
    from {{d}}
    where {_PAIR} and ts_utc > %(newest)s - %(history)s::interval and ts_utc <= %(newest)s
    order by ts_utc desc, event_id desc
    limit %(limit)s
    """
)

DRIFT_COUNT_SQL = sql.SQL(
    f"select count(*)::int from {{d}} where {_PAIR} "
    "and ts_utc > %(newest)s - %(history)s::interval and ts_utc <= %(newest)s"
)

# learning updates: predictions whose outcome was learned (learned_at set), placed at the
# market minute the outcome arrived (ts_utc + horizon), when the learner could learn it
_LEARNED_AT_MARKET = "(ts_utc + horizon_minutes * interval '1 minute')"
LEARN_SERIES_SQL = sql.SQL(
    f"""
    select date_trunc(%(bucket)s, {_LEARNED_AT_MARKET}, 'UTC'), count(*)::int
    from {{p}}
    where {_PAIR} and learned_at is not null
        -- a sargable bound first (horizons are shorter than a day), then the exact one
        and ts_utc > %(newest)s - %(history)s::interval - interval '1 day'
        and {_LEARNED_AT_MARKET} > %(newest)s - %(history)s::interval
        and {_LEARNED_AT_MARKET} <= %(newest)s
    group by 1
    order by 1
    """
)

# weight updates: distinct (pair, ts_utc) at which the ensemble re-weighted its members
REWEIGHT_SERIES_SQL = sql.SQL(
    f"""
    select date_trunc(%(bucket)s, ts_utc, 'UTC'), count(distinct (pair, ts_utc))::int
    from {{w}}
    where {_PAIR} and ts_utc > %(newest)s - %(history)s::interval and ts_utc <= %(newest)s
    group by 1
    order by 1
    """
)

# updates are counted at their learning minute, so "last hour" means the hour before newest
PAIR_SUMMARY_SQL = sql.SQL(
    f"""
    with recent as (
        select *, {_LEARNED_AT_MARKET} as learned_market_utc
        from {{p}}
        where {_PAIR} and ts_utc > %(newest)s - interval '8 days' and ts_utc <= %(newest)s
    )
    select
        pair,
        count(realized) filter (where ts_utc > %(newest)s - interval '1 day')::int,
        avg(abs(prediction - realized)) filter (where ts_utc > %(newest)s - interval '1 day'),
        avg(abs(static_prediction - realized))
            filter (where ts_utc > %(newest)s - interval '1 day'),
        count(learned_at)
            filter (where learned_market_utc > %(newest)s - interval '1 hour')::int,
        count(learned_at)
            filter (where learned_market_utc > %(newest)s - interval '1 day')::int,
        count(learned_at)
            filter (where learned_market_utc > %(newest)s - interval '7 days')::int,
        max(learned_at)
    from recent
    group by pair
    order by pair
    """
)

DRIFT_BY_PAIR_SQL = sql.SQL(
    f"select pair, count(*)::int from {{d}} where {_PAIR} "
    "and ts_utc > %(newest)s - interval '7 days' and ts_utc <= %(newest)s group by pair"
)
