"""The dashboard's charts as PNG data URIs, so the page needs no file or network besides itself."""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Sequence

from bqx.dashboard.data import DashboardData

FIGSIZE = (11.0, 3.4)
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: the server and the tests run headless
    import matplotlib.pyplot as plt

    return plt


def _to_data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _axes(title: str, ylabel: str):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    return fig, ax


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")


def accuracy_chart(data: DashboardData) -> str:
    """MAE per time bucket and horizon: online ensemble (solid) vs static model (dashed)."""
    fig, ax = _axes("Prediction error over time (MAE, realized rows)", "MAE (bqx units)")
    horizons = sorted({row[1] for row in data.accuracy_series})
    for i, horizon in enumerate(horizons):
        rows = [row for row in data.accuracy_series if row[1] == horizon]
        color = f"C{i}"
        ax.plot([r[0] for r in rows], [r[2] for r in rows], color=color, label=f"online {horizon}m")
        static = [(r[0], r[3]) for r in rows if r[3] is not None]
        if static:
            ax.plot(*zip(*static, strict=True), color=color, ls="--", label=f"static {horizon}m")
    if horizons:
        ax.legend(loc="upper left", fontsize=8, ncols=4)
        _log_scale_if_spread(ax, [v for r in data.accuracy_series for v in r[2:4]])
    else:
        _empty_note(ax, "no realized predictions in this span yet")
    return _to_data_uri(fig)


def _log_scale_if_spread(ax, values: Sequence[float | None], ratio: float = 100.0) -> None:
    """A log axis when errors span more than `ratio`: one diverging hour would flatten the rest."""
    positive = [v for v in values if v is not None and v > 0]
    if positive and max(positive) > ratio * min(positive):
        ax.set_yscale("log")
        ax.set_ylabel("MAE (bqx units, log scale)")


def weights_chart(data: DashboardData) -> str:
    """Mean ensemble weight of each member per time bucket, stacked (they sum to about 1)."""
    scope = "mean over pairs" if len(data.pairs) != 1 else data.pairs[0]
    fig, ax = _axes(f"Ensemble weights over time ({scope})", "weight")
    by_member: dict[str, dict] = defaultdict(dict)
    for bucket, member, weight in data.weight_series:
        by_member[member][bucket] = weight
    buckets = sorted({row[0] for row in data.weight_series})
    if buckets:
        members = sorted(by_member)
        stacks = [[by_member[m].get(b, 0.0) for b in buckets] for m in members]
        ax.stackplot(buckets, stacks, labels=members, alpha=0.85)
        ax.set_ylim(0, max(1.0, max(sum(col) for col in zip(*stacks, strict=True))))
        ax.legend(loc="upper left", fontsize=8, ncols=min(len(members), 6))
    else:
        _empty_note(ax, "no ensemble weights recorded")
    return _to_data_uri(fig)


def drift_chart(data: DashboardData) -> str:
    """Drift events as a timeline: one row per pair, one marker shape per detector."""
    fig, ax = _axes("Drift events (shown in the log below)", "")
    events = data.drift_events
    if events:
        pairs = sorted({e.pair for e in events})
        rows = {pair: i for i, pair in enumerate(pairs)}
        markers = "o^sDvP*X"
        for i, detector in enumerate(sorted({e.detector for e in events})):
            chosen = [e for e in events if e.detector == detector]
            ax.scatter(
                [e.ts_utc for e in chosen],
                [rows[e.pair] for e in chosen],
                marker=markers[i % len(markers)],
                s=40,
                color=f"C{i + 3}",
                label=detector,
            )
        ax.set_yticks(range(len(pairs)), pairs, fontsize=8)
        ax.set_ylim(-0.7, len(pairs) - 0.3)
        ax.legend(loc="upper left", fontsize=8)
    else:
        _empty_note(ax, "no drift events in this span")
    if data.newest_utc is not None:
        ax.axvline(data.newest_utc, color="#999", lw=0.8)
    return _to_data_uri(fig)


def updates_chart(data: DashboardData) -> str:
    """Learning updates and ensemble re-weightings per time bucket (market clock)."""
    fig, ax = _axes("Model update frequency", "updates per bucket")
    series: Sequence = data.update_series
    if series:
        buckets = [row[0] for row in series]
        width = _bar_width(buckets)
        ax.bar(buckets, [row[1] for row in series], width=width, label="learning updates")
        ax.plot(buckets, [row[2] for row in series], color="C3", label="weight updates")
        ax.legend(loc="upper left", fontsize=8)
    else:
        _empty_note(ax, "no learning updates recorded")
    return _to_data_uri(fig)


def _bar_width(buckets: Sequence) -> float:
    """Bar width in days (matplotlib's date unit): 80% of the smallest bucket spacing."""
    gaps = [(b - a).total_seconds() for a, b in zip(buckets, buckets[1:], strict=False)]
    return 0.8 * (min(gaps) if gaps else 3600.0) / 86400.0


def all_charts(data: DashboardData) -> dict[str, str]:
    """Chart name → PNG data URI, in page order."""
    return {
        "accuracy": accuracy_chart(data),
        "weights": weights_chart(data),
        "drift": drift_chart(data),
        "updates": updates_chart(data),
    }
