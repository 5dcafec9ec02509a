"""One self-contained HTML page: inline CSS, PNG charts as data URIs, no external request."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime

from bqx.dashboard.charts import all_charts
from bqx.dashboard.data import DashboardData, WindowAccuracy
from bqx.dashboard.live import FEED_STALE_AFTER, LiveStatus
from bqx.pairs import PAIRS

EMPTY_MESSAGE = "no online predictions yet — run `bqx online replay`"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
background:#f4f6f9}
header{background:#1d2733;color:#fff;padding:14px 28px;display:flex;align-items:baseline;gap:24px}
header h1{font-size:20px;margin:0}header .asof{color:#b8c4d2;font-size:14px}
header form{margin-left:auto}main{padding:18px 28px;max-width:1200px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px 18px;margin:14px 0}
h2{font-size:16px;margin:4px 0 10px}.kpis{display:flex;gap:14px;flex-wrap:wrap}
.kpi{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:10px 16px;min-width:150px}
.kpi .v{font-size:22px;font-weight:600}.kpi .l{color:#5b6b7c;font-size:12px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #e7ebf0;padding:4px 8px;text-align:right}
th{background:#f0f3f7}td.t,th.t{text-align:left}
td.ev{font-family:ui-monospace,monospace;font-size:12px;max-width:560px;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}
img.chart{display:block;max-width:100%;height:auto}.note{color:#5b6b7c;font-size:12px}
.better{color:#17803d}.worse{color:#b42318}.empty{font-size:18px;padding:40px 0}
code{background:#eef1f5;padding:1px 4px;border-radius:3px}
.stale{background:#b42318;color:#fff;padding:10px 28px;font-weight:600}
"""

# Marks every chart with its rendered size once loaded, so a headless browser's DOM dump
# shows that the images decoded and laid out (data-rendered="WxH"; 0x0 = broken).
SCRIPT = """
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('img.chart'), ok = 0;
  charts.forEach(function (img) {
    var box = img.getBoundingClientRect();
    var w = img.naturalWidth ? Math.round(box.width) : 0;
    var h = img.naturalHeight ? Math.round(box.height) : 0;
    img.setAttribute('data-rendered', w + 'x' + h);
    if (w > 0 && h > 0) { ok += 1; }
  });
  document.body.setAttribute('data-charts-rendered', ok + '/' + charts.length);
});
"""


def render_page(data: DashboardData, pair: str | None = None, interactive: bool = False) -> str:
    """The dashboard page; `interactive` adds the pair selector (served mode only)."""
    if data.is_empty:
        body = _banner(data.live) + _empty_body(data) + _live_section(data.live)
        return _page(body, subtitle="", selector=_selector(pair, interactive))
    charts = all_charts(data)
    body = "\n".join(
        [
            _banner(data.live),
            _kpis(data),
            _live_section(data.live),
            _section(
                "Prediction accuracy — last hour / day / week",
                _accuracy_table(data.accuracy)
                + _chart(charts["accuracy"], "prediction error over time")
                + _accuracy_note(data),
            ),
            _section(
                "Ensemble weights over time",
                _chart(charts["weights"], "ensemble weights over time") + _weights_table(data),
            ),
            _section(
                f"Drift events — {data.drift_event_count} in the last week",
                _chart(charts["drift"], "drift event timeline") + _drift_table(data),
            ),
            _section(
                "Model update frequency",
                _chart(charts["updates"], "model updates per hour") + _pairs_table(data),
            ),
        ]
    )
    scope = pair or f"{len(data.pairs)} pairs"
    subtitle = f"as of {_ts(data.newest_utc)} UTC (newest prediction) · {scope}"
    return _page(body, subtitle=subtitle, selector=_selector(pair, interactive))


def _page(body: str, subtitle: str, selector: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>BQX online monitoring</title><style>{STYLE}</style></head>
<body>
<header><h1>BQX online monitoring</h1><span class="asof">{html.escape(subtitle)}</span>
{selector}</header>
<main>
{body}
</main>
<script>{SCRIPT}</script>
</body></html>
"""


def _empty_body(data: DashboardData) -> str:
    missing = ""
    if data.missing_tables:
        names = ", ".join(f"bqx.{name}" for name in data.missing_tables)
        missing = f'<p class="note">Tables not created yet: {html.escape(names)}.</p>'
    return _section(
        "Nothing to show yet",
        f'<p class="empty" id="empty-state">{_code(EMPTY_MESSAGE)}</p>{missing}',
    )


def _code(text: str) -> str:
    """Escape text and show `backticked` parts as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _selector(pair: str | None, interactive: bool) -> str:
    if not interactive:
        return ""
    options = ['<option value="">all pairs</option>'] + [
        f'<option value="{p}"{" selected" if p == pair else ""}>{p}</option>' for p in PAIRS
    ]
    return (
        '<form method="get"><select name="pair" onchange="this.form.submit()">'
        + "".join(options)
        + "</select> <noscript><button>show</button></noscript></form>"
    )


def _section(title: str, inner: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{inner}</section>"


def _chart(uri: str, alt: str) -> str:
    return f'<img class="chart" src="{uri}" alt="{html.escape(alt)}">'


def _kpis(data: DashboardData) -> str:
    day = _main_horizon(data.accuracy, "day")
    hour_updates = sum(p.updates_hour for p in data.pair_summaries)
    drift_day = sum(
        1
        for e in data.drift_events
        if data.newest_utc and (data.newest_utc - e.ts_utc).total_seconds() <= 86400
    )
    items = [
        ("pairs online", str(len(data.pairs))),
        ("MAE, last day", _num(day.mae if day else None)),
        ("static MAE, last day", _num(day.static_mae if day else None)),
        ("hit rate, last day", _pct(day.hit_rate if day else None)),
        ("drift events, last day", str(drift_day)),
        ("learning updates, last hour", f"{hour_updates:,}"),
    ]
    cells = "".join(
        f'<div class="kpi"><div class="v">{html.escape(v)}</div>'
        f'<div class="l">{html.escape(label)}</div></div>'
        for label, v in items
    )
    return f'<div class="kpis">{cells}</div>'


def _banner(live: LiveStatus | None) -> str:
    """The red "feed stale" bar: a live feed ran, the market is open, no bars for 5 minutes."""
    if live is None or not live.feed_stale:
        return ""
    minutes = live.feed_age.total_seconds() / 60 if live.feed_age else 0.0
    return (
        f'<div class="stale" id="feed-stale">Feed stale: no bars for {minutes:.0f} minutes '
        f"while the market is open (newest bar {_ts(live.newest_bar_utc)} UTC, arrived "
        f"{_ts(live.last_arrival_utc)} UTC).</div>"
    )


def _live_section(live: LiveStatus | None) -> str:
    """The feed's age and the live loop's latency per part (p50 / p99, last hour)."""
    if live is None or live.last_arrival_utc is None:
        return ""
    age = live.feed_age.total_seconds() if live.feed_age else 0.0
    feed = (
        f'<p class="note" id="feed-age">Newest bar {_ts(live.newest_bar_utc)} UTC, arrived '
        f"{_duration(age)} ago ({_ts(live.last_arrival_utc)} UTC, wall clock). The feed is "
        f"called stale after {FEED_STALE_AFTER.total_seconds() / 60:.0f} minutes without bars "
        "while the market is open.</p>"
    )
    rows = [
        [html.escape(p.part), f"{p.minutes:,}", _seconds(p.p50_seconds), _seconds(p.p99_seconds)]
        for p in live.latency
        if p.minutes
    ]
    table = (
        _table(["part", "minutes", "p50", "p99"], rows)
        + '<p class="note">Over the hour before the newest prediction. End to end counts '
        "minutes that arrived one by one (a live feed), from the arrival of the minute's bars "
        "to its last stored prediction; a backlog being caught up shows here as waiting.</p>"
        if rows
        else '<p class="note">No live minutes in the last hour (a replay of history, or '
        "serve has not run): start <code>bqx online serve</code> with a feed.</p>"
    )
    return _section("Live loop — feed and latency", feed + table)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _main_horizon(rows: Sequence[WindowAccuracy], window: str) -> WindowAccuracy | None:
    """The window's row with the most scored predictions (the main horizon)."""
    chosen = [r for r in rows if r.window == window]
    return max(chosen, key=lambda r: r.scored) if chosen else None


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ("t",)
) -> str:
    """Rows of already-escaped cells; classes per column ("t" = text, left-aligned)."""

    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="{classes[i] if i < len(classes) else ""}">{v}</{tag}>'
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table><tr>{cells([html.escape(h) for h in head], 'th')}</tr>{body}</table>"


def _accuracy_table(rows: Sequence[WindowAccuracy]) -> str:
    if not rows:
        return '<p class="note">No prediction has a realized value yet.</p>'
    head = ["window", "horizon", "predictions", "scored", "MAE", "RMSE", "static MAE", "hit rate"]
    return _table(
        head,
        [
            [
                f"last {r.window}",
                f"{r.horizon_minutes} min",
                f"{r.predictions:,}",
                f"{r.scored:,}",
                _compare(r.mae, r.static_mae),
                _num(r.rmse),
                _num(r.static_mae),
                _pct(r.hit_rate),
            ]
            for r in rows
        ],
    )


def _accuracy_note(data: DashboardData) -> str:
    until = ", ".join(
        sorted({f"{r.horizon_minutes} min: {_ts(r.scored_until)}" for r in data.accuracy})
    )
    return (
        '<p class="note">Windows end at the newest prediction whose outcome is known '
        f"({html.escape(until) or 'none yet'} UTC; market time, not the wall clock). MAE and "
        "RMSE of the online ensemble; hit rate = share with the direction of the move right; "
        "static = the multi-task model on the same rows.</p>"
    )


def _weights_table(data: DashboardData) -> str:
    if not data.latest_weights:
        return ""
    rows = [[html.escape(m), _num(w), _num(mae)] for m, w, mae in data.latest_weights]
    return (
        '<p class="note">Latest weights (each pair at its newest update, averaged).</p>'
        + _table(["member", "weight", "recent MAE"], rows)
    )


def _drift_table(data: DashboardData) -> str:
    if not data.drift_events:
        return '<p class="note">No drift events in the last week.</p>'
    rows = [
        [str(e.event_id), _ts(e.ts_utc), e.pair, html.escape(e.detector), html.escape(e.evidence)]
        for e in data.drift_events
    ]
    table = _table(
        ["event", "ts_utc", "pair", "detector", "evidence"], rows, ("", "t", "t", "t", "t ev")
    )
    shown = len(data.drift_events)
    more = data.drift_event_count - shown
    note = f'<p class="note">Newest {shown} shown' + (f", {more} older" if more > 0 else "") + "."
    return note + "</p>" + table


def _pairs_table(data: DashboardData) -> str:
    head = [
        "pair",
        "scored, last day",
        "MAE, last day",
        "static MAE",
        "updates, hour",
        "updates, day",
        "updates, week",
        "last learned (UTC)",
        "drift events, week",
    ]
    rows = [
        [
            p.pair,
            f"{p.scored_day:,}",
            _compare(p.mae_day, p.static_mae_day),
            _num(p.static_mae_day),
            f"{p.updates_hour:,}",
            f"{p.updates_day:,}",
            f"{p.updates_week:,}",
            _ts(p.last_learned_utc),
            str(p.drift_events_week),
        ]
        for p in data.pair_summaries
    ]
    return (
        '<p class="note">Learning updates are counted at the market minute the outcome '
        "arrived (ts_utc + horizon); weight updates at the minute the ensemble re-weighted; "
        "last learned = the newest learned_at.</p>" + _table(head, rows)
    )


def _compare(value: float | None, reference: float | None) -> str:
    """value, green when below the reference (lower error is better), red when above."""
    text = _num(value)
    if value is None or reference is None:
        return text
    css = "better" if value < reference else "worse" if value > reference else ""
    return f'<span class="{css}">{text}</span>' if css else text


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}%"


def _ts(value: datetime | None) -> str:
    return "–" if value is None else f"{value:%Y-%m-%d %H:%M}"
