"""The pair universe: 28 pairs of 8 currencies, quoted in market convention.

Every identifier that reaches SQL text goes through `validate_pair` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bqx.errors import BqxUserError

# Market priority: a pair is quoted BASE+QUOTE with the earlier currency as base
# (EURUSD, GBPJPY, AUDNZD, USDCAD, CADCHF, CHFJPY ...).
CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")

PAIRS: tuple[str, ...] = tuple(
    base + quote for i, base in enumerate(CURRENCIES) for quote in CURRENCIES[i + 1 :]
)

_PAIR_PATTERN = re.compile(r"^[A-Z]{6}$")


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
    """Quote precision used by the vendors: 3 decimals for JPY quotes, 5 otherwise."""
    return 3 if validate_pair(pair).endswith("JPY") else 5
