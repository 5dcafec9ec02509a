"""Settings read once from the environment at the edge (CLI, tests) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bqx.errors import BqxUserError

BARS_NOT_BEFORE_ENV = "BQX_BARS_NOT_BEFORE"
BARS_NOT_AFTER_ENV = "BQX_BARS_NOT_AFTER"
PRICE_BAND_ENV = "BQX_PRICE_BAND_FACTOR"


@dataclass(frozen=True)
class BarRules:
    """The door's settings: which bars `bqx ingest` (and `bqx feed`) accept.

    not_before / not_after: the window a bar's minute must lie in (UTC, both inclusive);
    not_after None means "now" when a file is opened (no bar from the future). Env:
    `BQX_BARS_NOT_BEFORE`, `BQX_BARS_NOT_AFTER` (YYYY-MM-DD or an ISO instant).
    price_band_factor: every price must lie within [reference / f, reference × f] of its pair's
    reference level (bqx.pairs.reference_price). Every pair's 1990-2026 range stays within a
    factor 2.5 of those levels, so 10 catches unit slips (pips, ×100, a lost decimal point,
    1e308) and never a real quote. Env: `BQX_PRICE_BAND_FACTOR`.
    """

    not_before: datetime = datetime(1990, 1, 1, tzinfo=UTC)
    not_after: datetime | None = None
    price_band_factor: float = 10.0

    def __post_init__(self) -> None:
        if not self.price_band_factor > 1:
            raise BqxUserError(
                f"{PRICE_BAND_ENV} must be a number above 1, got {self.price_band_factor}"
            )
        if self.not_after is not None and self.not_after < self.not_before:
            raise BqxUserError(
                f"the bar window is empty: {BARS_NOT_AFTER_ENV} {self.not_after:%Y-%m-%d %H:%M} "
                f"is before {BARS_NOT_BEFORE_ENV} {self.not_before:%Y-%m-%d %H:%M}"
            )

    @classmethod
    def from_env(cls) -> BarRules:
        defaults = cls()
        before = os.environ.get(BARS_NOT_BEFORE_ENV)
        after = os.environ.get(BARS_NOT_AFTER_ENV)
        band = os.environ.get(PRICE_BAND_ENV)
        try:
            factor = float(band) if band else defaults.price_band_factor
        except ValueError:
            raise BqxUserError(f"{PRICE_BAND_ENV} must be a number above 1, got {band!r}") from None
        not_before = parse_instant(before, BARS_NOT_BEFORE_ENV) if before else None
        return cls(
            not_before=not_before or defaults.not_before,
            not_after=parse_instant(after, BARS_NOT_AFTER_ENV) if after else defaults.not_after,
            price_band_factor=factor,
        )

    def window_us(self, now: datetime | None = None) -> tuple[int, int]:
        """The window as microseconds since 1970 UTC; an open end is `now` (default: the clock)."""
        end = self.not_after or now or datetime.now(UTC)
        return _micros(self.not_before), _micros(end)


def parse_instant(text: str, name: str) -> datetime:
    """A YYYY-MM-DD date or ISO instant (UTC unless it says otherwise), as aware UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BqxUserError(f"{name} must be YYYY-MM-DD or an ISO instant, got {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _micros(instant: datetime) -> int:
    delta = instant - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Settings:
    """Where a run keeps its state.

    home: `$BQX_HOME` (default `./.bqx`): embedded database, artifacts, reports.
    database_url: `$BQX_DATABASE_URL`; None means the embedded PostgreSQL under home/pgdata.
    bar_rules: what ingest lets in (BarRules, `$BQX_BARS_*`, `$BQX_PRICE_BAND_FACTOR`).
    """

    home: Path
    database_url: str | None = None
    bar_rules: BarRules = field(default_factory=BarRules)

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("BQX_HOME", ".bqx")).expanduser().resolve()
        url = os.environ.get("BQX_DATABASE_URL") or None
        return cls(home=home, database_url=url, bar_rules=BarRules.from_env())

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def uses_embedded(self) -> bool:
        return self.database_url is None
