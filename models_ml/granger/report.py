"""What a Granger run found, for a reader: a leaders × followers heatmap and a check of the
lead-lag relationships the seed plan claims are known, both under $BQX_HOME/reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bqx.pairs import PAIRS, sister_pairs
from models_ml.granger.discovery import GrangerResult

log = logging.getLogger(__name__)

JPY_CROSSES = ("EURJPY", "GBPJPY", "AUDJPY", "NZDJPY", "CADJPY", "CHFJPY")


@dataclass(frozen=True)
class KnownLink:
    """A relationship the seed plan claims: leader leads follower by lag_from … lag_to minutes."""

    leader: str
    follower: str
    lag_from: int
    lag_to: int

    @property
    def claimed(self) -> str:
        return f"{self.lag_from}-{self.lag_to} min"


KNOWN_LINKS: tuple[KnownLink, ...] = (
    KnownLink("GBPUSD", "EURUSD", 3, 7),
    *(KnownLink("USDJPY", cross, 2, 5) for cross in JPY_CROSSES),
    KnownLink("AUDUSD", "NZDUSD", 5, 10),
)


@dataclass(frozen=True)
class KnownLinkCheck:
    """How one claimed link fared: its best lag's numbers and a verdict."""

    link: KnownLink
    verdict: str  # holds | significant at another lag | not found | not tested (why)
    best: pd.Series | None = None  # the ordered pair's row of GrangerResult.best, if tested


def check_known_links(result: GrangerResult) -> list[KnownLinkCheck]:
    """Verdict per claimed link: significant with the best lag inside the claimed range."""
    best = result.best.set_index(["leader", "follower"])
    skipped = {(leader, follower) for leader, follower, _ in result.skipped}
    checks = []
    for link in KNOWN_LINKS:
        key = (link.leader, link.follower)
        if key not in best.index:
            checks.append(KnownLinkCheck(link, f"not tested ({_why_untested(link, skipped)})"))
            continue
        row = best.loc[key]
        if not row["is_significant"]:
            verdict = "not found"
        elif link.lag_from <= row["lag_minutes"] <= link.lag_to:
            verdict = "holds"
        else:
            verdict = "significant at another lag"
        checks.append(KnownLinkCheck(link, verdict, row))
    return checks


def _why_untested(link: KnownLink, skipped: set[tuple[str, str]]) -> str:
    if link.leader not in sister_pairs(link.follower):
        return "not sister pairs"
    if (link.leader, link.follower) in skipped:
        return "too few aligned training rows"
    return "pair not in scope"


def known_links_markdown(result: GrangerResult) -> str:
    """A short Markdown report: one row per claimed link."""
    lines = [
        "# Known lead-lag links: do they hold?",
        "",
        f"Train period {result.train.start_utc:%Y-%m-%d %H:%M} to "
        f"{result.train.end_utc:%Y-%m-%d %H:%M} UTC; Granger F tests on minute changes of "
        f"bqx_60, Benjamini-Hochberg FDR {result.alpha:g} over {len(result.tests):,} tests; "
        f"tested {result.tested_at:%Y-%m-%d %H:%M} UTC. Best lag: the significant lag with the "
        "largest F.",
        "",
        "| leader | follower | claimed lag | significant | best lag | p_adjusted | effect size "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for check in check_known_links(result):
        link, row = check.link, check.best
        if row is None:
            numbers = "| – | – | – | – "
        else:
            numbers = (
                f"| {'yes' if row['is_significant'] else 'no'} | {int(row['lag_minutes'])} min "
                f"| {row['p_adjusted']:.2e} | {row['effect_size']:.4f} "
            )
        lines.append(
            f"| {link.leader} | {link.follower} | {link.claimed} {numbers}| {check.verdict} |"
        )
    return "\n".join(lines) + "\n"


def write_known_links(result: GrangerResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(known_links_markdown(result))
    log.info("wrote %s", path)
    return path


def effect_matrix(result: GrangerResult) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pairs (universe order), best-lag effect sizes and lags as leader × follower matrices;
    NaN where an ordered pair was not tested, lag 0 where it is not significant."""
    tested = set(result.best["leader"]) | set(result.best["follower"])
    pairs = [pair for pair in PAIRS if pair in tested]
    position = {pair: i for i, pair in enumerate(pairs)}
    effects = np.full((len(pairs), len(pairs)), np.nan)
    lags = np.zeros((len(pairs), len(pairs)), dtype=int)
    for row in result.best.itertuples(index=False):
        i, j = position[row.leader], position[row.follower]
        effects[i, j] = row.effect_size
        lags[i, j] = row.lag_minutes if row.is_significant else 0
    return pairs, effects, lags


def write_heatmap(result: GrangerResult, path: Path) -> Path:
    """PNG of leaders × followers coloured by the best lag's effect size (partial R²), with
    the lag written in significant cells; grey cells were not tested (not sisters)."""
    pairs, effects, lags = effect_matrix(result)
    side = max(6.0, 0.42 * len(pairs) + 2.5)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")  # Agg canvas via savefig
    axes = figure.subplots()
    cmap = _colormap()
    top = np.nanmax(effects) if np.isfinite(effects).any() else 1.0
    image = axes.imshow(np.ma.masked_invalid(effects), cmap=cmap, vmin=0.0, vmax=top)
    for i, j in zip(*np.nonzero(lags), strict=True):
        shade = "black" if effects[i, j] > 0.6 * top else "white"
        axes.text(j, i, str(lags[i, j]), ha="center", va="center", fontsize=7, color=shade)
    axes.set_xticks(range(len(pairs)), pairs, rotation=90, fontsize=8)
    axes.set_yticks(range(len(pairs)), pairs, fontsize=8)
    axes.set_xlabel("follower")
    axes.set_ylabel("leader")
    axes.set_title(
        f"Granger lead-lag on the train period ({result.train.start_utc:%Y-%m-%d} to "
        f"{result.train.end_utc:%Y-%m-%d})\nnumbers: best lag in minutes, significant at "
        f"FDR {result.alpha:g}",
        fontsize=10,
    )
    figure.colorbar(image, ax=axes, shrink=0.8, label="effect size of the best lag (partial R²)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    log.info("wrote %s", path)
    return path


def _colormap():
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad="#d9d9d9")  # grey: not tested


def summary_rows(result: GrangerResult, limit: int | None = None) -> list[tuple[str, ...]]:
    """Significant links, strongest first, as display strings (the CLI's table)."""
    links = result.relationships.sort_values("effect_size", ascending=False)
    if limit is not None:
        links = links.head(limit)
    return [
        (
            row.leader,
            row.follower,
            str(row.lag_minutes),
            f"{row.f_stat:.1f}",
            f"{row.p_adjusted:.1e}" if row.p_adjusted > 0 else "< 1e-300",
            f"{row.effect_size:.4f}",
        )
        for row in links.itertuples(index=False)
    ]
