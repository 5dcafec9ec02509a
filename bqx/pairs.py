"""The pair universe: 28 pairs of 8 currencies, quoted in market convention.

Every identifier that reaches SQL text goes through `validate_pair` first.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from bqx.errors import BqxUserError

# Market priority: a pair is quoted BASE+QUOTE with the earlier currency as base
# (EURUSD, GBPJPY, AUDNZD, USDCAD, CADCHF, CHFJPY ...).
CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")

PAIRS: tuple[str, ...] = tuple(
    base + quote for i, base in enumerate(CURRENCIES) for quote in CURRENCIES[i + 1 :]
)

_PAIR_PATTERN = re.compile(r"^[A-Z]{6}$")

# The dbt seed every precision check reads: `price_decimals` is the setting a user changes
# when a vendor quotes one decimal more (dbt's price_units_are_exact test reads it too).
PAIRS_SEED = Path(__file__).resolve().parents[1] / "seeds" / "pairs.csv"
PRICE_DECIMALS_SETTING = "price_decimals in seeds/pairs.csv"

# Value of one unit of each currency in USD, about 2024 (so generated pairs start near real
# levels, and the door's price band is centred on them).
REFERENCE_VALUE_USD: dict[str, float] = {
    "EUR": 1.10,
    "GBP": 1.27,
    "AUD": 0.67,
    "NZD": 0.61,
    "USD": 1.0,
    "CAD": 1 / 1.35,
    "CHF": 1 / 0.88,
    "JPY": 1 / 148.0,
}


def validate_pair(code: str) -> str:
    """Return the upper-cased pair code, or raise BqxUserError if it is not in the universe."""
    candidate = code.strip().upper()
    if not _PAIR_PATTERN.match(candidate) or candidate not in PAIRS:
        raise BqxUserError(f"unknown pair {code!r}: expected one of {', '.join(PAIRS)}")
    return candidate


def parse_pairs(spec: str | Iterable[str] | None) -> list[str]:
    """Parse a comma-separated pair list (or iterable); None or empty means the whole universe."""
    if spec is None:
        return list(PAIRS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    pairs = [validate_pair(item) for item in items if item.strip()]
    return pairs or list(PAIRS)


def currencies_of(pair: str) -> tuple[str, str]:
    """Base and quote currency of a validated pair."""
    pair = validate_pair(pair)
    return pair[:3], pair[3:]


def sister_pairs(pair: str) -> list[str]:
    """The 12 other pairs sharing a currency with `pair`."""
    base, quote = currencies_of(pair)
    return [p for p in PAIRS if p != pair and (base in (p[:3], p[3:]) or quote in (p[:3], p[3:]))]


def price_decimals(pair: str) -> int:
    """Quote precision of a pair (seeds/pairs.csv: 3 decimals for JPY quotes, 5 otherwise)."""
    return _seed_decimals()[validate_pair(pair)]


@cache
def _seed_decimals() -> dict[str, int]:
    with PAIRS_SEED.open(newline="") as handle:
        return {row["pair"]: int(row["price_decimals"]) for row in csv.DictReader(handle)}


def reference_price(pair: str) -> float:
    """A pair's level from REFERENCE_VALUE_USD: the centre of the door's price band."""
    base, quote = currencies_of(pair)
    return REFERENCE_VALUE_USD[base] / REFERENCE_VALUE_USD[quote]
