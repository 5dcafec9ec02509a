"""Spread costs per pair for the trading view of `bqx evaluate`, in pips, and pip sizes.

Defaults are typical retail ECN spreads of liquid hours: majors 0.8-1.5 pips, crosses 2-4.
A CSV with header `pair,spread_pips` (`--spread-config`) overrides any of them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bqx.errors import BqxUserError
from bqx.pairs import PAIRS, currencies_of, validate_pair

MAJOR_SPREAD_PIPS = {
    "EURUSD": 0.8,
    "USDJPY": 0.9,
    "GBPUSD": 1.2,
    "AUDUSD": 1.0,
    "USDCAD": 1.4,
    "USDCHF": 1.4,
    "NZDUSD": 1.5,
}
CROSS_SPREAD_PIPS = {"EURJPY": 2.0, "EURGBP": 2.0, "EURCHF": 2.0, "GBPJPY": 3.0, "AUDJPY": 2.5}
OTHER_CROSS_SPREAD_PIPS = 3.5  # the thinner crosses (GBPNZD, EURNZD, ...)


def default_spreads() -> dict[str, float]:
    return {
        pair: MAJOR_SPREAD_PIPS.get(pair, CROSS_SPREAD_PIPS.get(pair, OTHER_CROSS_SPREAD_PIPS))
        for pair in PAIRS
    }


def load_spreads(path: Path | None) -> dict[str, float]:
    """Default spreads, overridden by the rows of `path` (CSV `pair,spread_pips`)."""
    spreads = default_spreads()
    if path is None:
        return spreads
    if not path.is_file():
        raise BqxUserError(f"spread config {path} not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"pair", "spread_pips"} - set(reader.fieldnames):
            raise BqxUserError(f"{path}: expected a header `pair,spread_pips`")
        for line, row in enumerate(reader, start=2):
            try:
                value = float(row["spread_pips"])
            except ValueError:
                raise BqxUserError(f"{path}:{line}: spread_pips is not a number") from None
            if value < 0:
                raise BqxUserError(f"{path}:{line}: a spread cannot be negative")
            spreads[validate_pair(row["pair"].strip().upper())] = value
    return spreads


def pip_size(pair: str) -> float:
    return 0.01 if currencies_of(pair)[1] == "JPY" else 0.0001


def spread_return(pair: str, spread_pips: float, price: np.ndarray) -> np.ndarray:
    """The cost of one round trip (one full spread) as a log return at these prices."""
    return spread_pips * pip_size(pair) / price
