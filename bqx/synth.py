"""A generated FX market whose structure is known: the default data of the demo and the tests.

Eight currency log-value factors (in USD terms) with stochastic volatility, an intraday
activity cycle and a shared regime chain (trending, choppy, high_vol). Every pair is
base factor minus quote factor, so the 28 pairs are triangularly consistent by construction
(EURJPY = EURUSD × USDJPY up to the vendor rounding of each quote). Lead-lag links are planted
between currencies: the follower's minute innovation includes `beta` × the leader's innovation
`lag` minutes earlier, so every leader-currency pair leads the follower-currency pair that
shares its other currency (GBPUSD → EURUSD at the GBP → EUR lag, for example).

Bars are bid OHLC built from `substeps` sub-minute points per minute; minutes from Friday
22:00 to Sunday 22:00 UTC are closed, a small share of minutes is missing per pair, and one
outage longer than an hour is planted. `ground_truth.json` records links, regimes and gaps.
The same config gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.errors import BqxUserError
from bqx.pairs import CURRENCIES, PAIRS, price_decimals, reference_price, validate_pair

log = logging.getLogger(__name__)

REGIMES = ("trending", "choppy", "high_vol")
MAX_DAYS = 800  # about 2 years of minutes: beyond that use real data


@dataclass(frozen=True)
class LeadLagLink:
    leader: str  # currency
    follower: str  # currency
    lag_minutes: int
    beta: float  # follower innovation += beta × leader innovation lag minutes ago


DEFAULT_LINKS = (
    LeadLagLink("GBP", "EUR", 5, 0.45),
    LeadLagLink("USD", "JPY", 3, 0.45),
    LeadLagLink("AUD", "NZD", 7, 0.45),
)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Times are UTC; `start` is the first calendar day (00:00 UTC)."""

    start: date
    days: int = 21
    pairs: tuple[str, ...] = PAIRS
    seed: int = 7
    links: tuple[LeadLagLink, ...] = DEFAULT_LINKS
    base_vol_pct: float = 0.005  # per-minute std of a currency factor, in percent
    vol_of_vol: float = 0.03  # std of the per-minute log-volatility shock
    vol_persistence: float = 0.998  # AR(1) coefficient of the log-volatility
    mean_regime_minutes: int = 240  # mean duration of a regime spell
    missing_share: float = 0.005  # share of trading minutes without a bar, per pair
    substeps: int = 8  # sub-minute points per bar (for high and low)
    outage_minutes: int = 90  # one planted gap longer than an hour (0: none)
    regime_params: dict = field(
        default_factory=lambda: {
            # vol multiplier, drift (percent per minute, random sign per currency), pull to
            # the spell's starting level per minute (mean reversion)
            "trending": {"vol": 1.0, "drift_pct": 0.0012, "reversion": 0.0},
            "choppy": {"vol": 0.7, "drift_pct": 0.0, "reversion": 0.02},
            "high_vol": {"vol": 2.5, "drift_pct": 0.0, "reversion": 0.0},
        }
    )

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_DAYS:
            raise BqxUserError(f"--days must be between 1 and {MAX_DAYS}, got {self.days}")
        if not self.pairs:
            raise BqxUserError("no pairs to generate")
        for pair in self.pairs:
            validate_pair(pair)
        for link in self.links:
            if link.leader not in CURRENCIES or link.follower not in CURRENCIES:
                raise BqxUserError(f"unknown currency in lead-lag link {link}")
            if link.lag_minutes < 1:
                raise BqxUserError(f"a lead-lag link needs a lag of at least 1 minute: {link}")


@dataclass
class Market:
    """The simulated market before it is written to files."""

    minutes: pd.DatetimeIndex  # trading minutes (UTC)
    bars: dict[str, pd.DataFrame]  # pair -> ts_utc, open, high, low, close, volume
    regimes: np.ndarray  # regime index per trading minute
    truth: dict


def trading_minutes(start: date, days: int) -> pd.DatetimeIndex:
    """Minutes of [start, start + days) that are open: Sunday 22:00 to Friday 22:00 UTC."""
    first = pd.Timestamp(datetime.combine(start, datetime.min.time()), tz="UTC")
    every = pd.date_range(first, periods=days * 1440, freq="min")
    weekday, hour = every.day_of_week, every.hour  # Monday = 0 … Sunday = 6
    closed = (weekday == 5) | ((weekday == 4) & (hour >= 22)) | ((weekday == 6) & (hour < 22))
    return every[~closed]


def _regime_chain(n: int, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Regime index per minute from spells of geometric length (mean_regime_minutes)."""
    regimes = np.empty(n, dtype=np.int8)
    position, current = 0, int(rng.integers(len(REGIMES)))
    while position < n:
        length = int(rng.geometric(1 / config.mean_regime_minutes))
        regimes[position : position + length] = current
        position += length
        current = int(rng.choice([r for r in range(len(REGIMES)) if r != current]))
    return regimes


def _activity(minutes: pd.DatetimeIndex) -> np.ndarray:
    """Intraday volatility cycle: quiet Asian hours, busy London and New York overlap."""
    hour = minutes.hour.to_numpy() + minutes.minute.to_numpy() / 60
    london = np.exp(-0.5 * ((hour - 10.0) / 3.0) ** 2)
    new_york = np.exp(-0.5 * ((hour - 15.0) / 2.5) ** 2)
    return 0.6 + 0.5 * london + 0.6 * new_york


def _factor_paths(
    minutes: pd.DatetimeIndex, regimes: np.ndarray, config: SynthConfig, rng: np.random.Generator
) -> np.ndarray:
    """Log factor values in percent at every sub-minute point: shape (n, substeps + 1, 8).

    Point 0 of minute t is the close of minute t-1 (the bar's open); point `substeps` is its
    close.
    """
    n, k, s = len(minutes), len(CURRENCIES), config.substeps
    # stochastic volatility: AR(1) log-volatility per currency
    shocks = rng.normal(0.0, config.vol_of_vol, size=(n, k))
    log_vol = np.zeros((n, k))
    for t in range(1, n):
        log_vol[t] = config.vol_persistence * log_vol[t - 1] + shocks[t]
    regime_vol = np.array([config.regime_params[r]["vol"] for r in REGIMES])[regimes]
    sigma = config.base_vol_pct * np.exp(log_vol) * (regime_vol * _activity(minutes))[:, None]

    sub = rng.standard_normal((n, s, k)) * (sigma / np.sqrt(s))[:, None, :]
    innovation = sub.sum(axis=1)  # each currency's own minute innovation
    lead = np.zeros((n, k))
    for link in config.links:
        lag = link.lag_minutes
        lead[lag:, CURRENCIES.index(link.follower)] += (
            link.beta * innovation[:-lag, CURRENCIES.index(link.leader)]
        )
    sub += (lead / s)[:, None, :]

    # regime drift and mean reversion act on minute closes; spells restart the anchor
    spell_start = np.r_[True, regimes[1:] != regimes[:-1]]
    spell_id = np.cumsum(spell_start) - 1
    direction = rng.choice([-1.0, 1.0], size=(int(spell_id[-1]) + 1, k))
    drift = np.array([config.regime_params[r]["drift_pct"] for r in REGIMES])[regimes]
    reversion = np.array([config.regime_params[r]["reversion"] for r in REGIMES])[regimes]
    closes = np.empty((n, k))
    level, anchor = np.zeros(k), np.zeros(k)
    weekend_jump = np.r_[False, np.diff(minutes.asi8) > 60 * 60 * 1_000_000_000]
    jumps = rng.normal(0.0, 3 * config.base_vol_pct * np.sqrt(30), size=(n, k))
    steps = sub.sum(axis=1)
    adjust = np.zeros((n, k))
    for t in range(n):
        if spell_start[t]:
            anchor = level.copy()
        extra = drift[t] * direction[spell_id[t]] - reversion[t] * (level - anchor)
        if weekend_jump[t]:
            extra = extra + jumps[t]
        adjust[t] = extra
        level = level + steps[t] + extra
        closes[t] = level
    sub += (adjust / s)[:, None, :]
    paths = np.concatenate([np.zeros((n, 1, k)), np.cumsum(sub, axis=1)], axis=1)
    opens = np.r_[np.zeros((1, k)), closes[:-1]]
    return paths + opens[:, None, :]


def _pair_bars(
    pair: str,
    stamps: np.ndarray,
    paths: np.ndarray,
    keep: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Bid OHLC bars of one pair from the factor paths, rounded to the pair's decimals."""
    base, quote = CURRENCIES.index(pair[:3]), CURRENCIES.index(pair[3:])
    level = reference_price(pair)
    points = level * np.exp((paths[:, :, base] - paths[:, :, quote]) / 100)
    decimals = price_decimals(pair)
    frame = pd.DataFrame(
        {
            "ts_utc": stamps,
            "open": np.round(points[:, 0], decimals),
            "high": np.round(points.max(axis=1), decimals),
            "low": np.round(points.min(axis=1), decimals),
            "close": np.round(points[:, -1], decimals),
            "volume": rng.poisson(40, size=len(stamps)),
        }
    )
    return frame[keep].reset_index(drop=True)


def _pair_rng(seed: int, pair: str) -> np.random.Generator:
    """Per-pair randomness that does not depend on which other pairs are generated."""
    return np.random.default_rng([seed, PAIRS.index(pair)])


def simulate(config: SynthConfig) -> Market:
    minutes = trading_minutes(config.start, config.days)
    if len(minutes) < 2:
        raise BqxUserError(f"{config.days} day(s) from {config.start} hold no trading minutes")
    rng = np.random.default_rng(config.seed)
    regimes = _regime_chain(len(minutes), config, rng)
    paths = _factor_paths(minutes, regimes, config, rng)

    outage = None
    if config.outage_minutes and len(minutes) > 4 * config.outage_minutes:
        first = int(rng.integers(len(minutes) // 4, len(minutes) // 2))
        outage = (first, first + config.outage_minutes)

    stamps = np.asarray(minutes.strftime("%Y-%m-%d %H:%M:00"))
    bars, missing = {}, {}
    for pair in config.pairs:
        pair_rng = _pair_rng(config.seed, pair)
        keep = pair_rng.random(len(minutes)) >= config.missing_share
        keep[0] = True
        if outage:
            keep[outage[0] : outage[1]] = False
        bars[pair] = _pair_bars(pair, stamps, paths, keep, pair_rng)
        missing[pair] = int((~keep).sum())

    truth = _ground_truth(config, minutes, regimes, outage, missing)
    return Market(minutes=minutes, bars=bars, regimes=regimes, truth=truth)


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:00")


def pair_links(link: LeadLagLink, pairs: tuple[str, ...] = PAIRS) -> list[dict]:
    """Pair-level consequences of a currency link: leader/X leads follower/X (sister pairs)."""
    out = []
    for other in CURRENCIES:
        if other in (link.leader, link.follower):
            continue
        leader = next(p for p in PAIRS if set((p[:3], p[3:])) == {link.leader, other})
        follower = next(p for p in PAIRS if set((p[:3], p[3:])) == {link.follower, other})
        if leader in pairs and follower in pairs:
            out.append({"leader": leader, "follower": follower, "lag_minutes": link.lag_minutes})
    return out


def _ground_truth(
    config: SynthConfig,
    minutes: pd.DatetimeIndex,
    regimes: np.ndarray,
    outage: tuple[int, int] | None,
    missing: dict[str, int],
) -> dict:
    starts = np.flatnonzero(np.r_[True, regimes[1:] != regimes[:-1]])
    ends = np.r_[starts[1:], len(regimes)]
    timeline = [
        {
            "start_utc": _iso(minutes[a]),
            "end_utc": _iso(minutes[b - 1] + timedelta(minutes=1)),
            "regime": REGIMES[regimes[a]],
        }
        for a, b in zip(starts, ends, strict=True)
    ]
    gaps = []
    if outage:
        gaps.append(
            {
                "kind": "outage",
                "start_utc": _iso(minutes[outage[0]]),
                "end_utc": _iso(minutes[outage[1]]),
                "minutes": outage[1] - outage[0],
                "pairs": "all",
            }
        )
    params = asdict(config)
    return {
        "generator": "bqx.synth",
        "seed": config.seed,
        "start": config.start.isoformat(),
        "days": config.days,
        "pairs": list(config.pairs),
        "trading_minutes": len(minutes),
        "trading_hours": "Sunday 22:00 to Friday 22:00 UTC",
        "links": [asdict(link) for link in config.links],
        "pair_links": [pl for link in config.links for pl in pair_links(link, config.pairs)],
        "regimes": timeline,
        "regime_share": {
            name: round(float((regimes == i).mean()), 4) for i, name in enumerate(REGIMES)
        },
        "gaps": gaps,
        "missing_minutes": missing,
        "parameters": {
            key: params[key]
            for key in (
                "base_vol_pct",
                "vol_of_vol",
                "vol_persistence",
                "mean_regime_minutes",
                "missing_share",
                "substeps",
                "regime_params",
            )
        },
    }


def _write_gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    # prices are already rounded to the pair's decimals; shortest repr strips trailing zeros
    # like the vendors' files do
    text = frame.to_csv(index=False, lineterminator="\n")
    buffer = io.BytesIO()
    # mtime=0 and no file name in the header: the same market gives the same bytes
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as archive:
        archive.write(text.encode())
    path.write_bytes(buffer.getvalue())


def write_market(config: SynthConfig, out: Path) -> dict:
    """Simulate and write <PAIR>.csv.gz files and ground_truth.json into `out`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BqxUserError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    market = simulate(config)
    for pair, frame in market.bars.items():
        _write_gzip_csv(frame, out / f"{pair}.csv.gz")
    (out / "ground_truth.json").write_text(json.dumps(market.truth, indent=2) + "\n")
    log.info(
        "wrote %d pairs × %d trading minutes to %s", len(market.bars), len(market.minutes), out
    )
    return market.truth
