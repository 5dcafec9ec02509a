"""Granger lead-lag discovery between sister pairs, fitted on the train period only.

For every ordered sister pair (leader, follower) the follower's minute change of bqx_60 is
regressed on its own last L changes, with and without the leader's last L changes, for
L = 1 … max_lag. The F test of the leader block (statsmodels' `ssr_ftest`) says whether the
leader's past helps; the block's partial R² says by how much. p-values are corrected with
Benjamini-Hochberg across every test, and the best lag of each significant ordered pair goes to
bqx.lead_lag_relationships, which the dbt lead-lag model reads at compile time.

Each change is divided by the pair's trailing RMS change of the previous `vol_window` minutes
before testing. The F test assumes a constant error variance; minute changes cluster in
volatility (sessions, regimes, news) shared by pairs with a common currency, and then the test
rejects far too often: on the generated market (8 pairs, 14 days, seed 5) raw changes made 25
of the 30 ordered sister pairs without any causal path significant at an FDR of 5%; scaled by
the 30-minute RMS, 0 of 30, with every planted link still found at its planted lag. The scale
uses only earlier minutes, so it adds no look-ahead; `vol_window = 0` tests the raw changes.

Why not `statsmodels.tsa.stattools.grangercausalitytests` itself: it builds lags by row
position, so on a series with weekend gaps and outages it pairs a Monday minute with Friday's
(and it rejects NaN, so gaps cannot be marked); and it refits every model with a
pseudo-inverse, about 11 s per ordered pair at 60,000 rows here, an hour for 336 ordered pairs.
Here a lag of k is k minutes on a 1-minute grid, rows whose lag block crosses a gap are
dropped, and the 2 × max_lag nested regressions share one Gram matrix. The statistic is the
same formula; tests/python/test_granger.py checks it against grangercausalitytests.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg2.extensions
import psycopg2.extras
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests
from threadpoolctl import threadpool_limits

from bqx.dbt_runner import project_var
from bqx.errors import BqxUserError
from bqx.pairs import PAIRS, sister_pairs, validate_pair
from bqx.periods import Period, load_periods
from bqx.sql import apply_ddl
from models_ml.granger.stats import (
    MIN_ROWS_PER_COEFFICIENT,
    WORKER_CHANGES,
    LagTest,
    init_worker,
    run_task,
    standardise,
)

log = logging.getLogger(__name__)

# The dbt lead-lag layer accepts lags of 1 to 60 minutes (tests/data/lead_lag_relationships_*).
MAX_LAG = int(project_var("max_lead_lag_minutes"))  # the lead-lag model and its test use it
_FETCH_ROWS = 50_000
TEST_COLUMNS = [
    "leader",
    "follower",
    "lag_minutes",
    "f_stat",
    "p_value",
    "p_adjusted",
    "effect_size",
    "n_obs",
]

# (stage, done, total): "reading" per pair, "testing" per ordered pair. Lets the CLI draw bars.
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GrangerConfig:
    """What to test. Built once at the edge (CLI, tests, bench) and passed down."""

    pairs: tuple[str, ...] = PAIRS
    max_lag: int = 15
    # false discovery rate (Benjamini-Hochberg over every test); the lead-lag model and its
    # data test keep links below the same dbt var
    alpha: float = float(project_var("lead_lag_alpha"))
    max_rows: int = 60_000  # most recent aligned training rows per ordered pair
    workers: int = 2
    vol_window: int = 30  # minutes of trailing RMS change that scale each change; 0: raw

    def __post_init__(self) -> None:
        pairs = tuple(dict.fromkeys(validate_pair(pair) for pair in self.pairs))
        object.__setattr__(self, "pairs", pairs)  # normalised (upper case, no repeats)
        if not 1 <= self.max_lag <= MAX_LAG:
            raise BqxUserError(
                f"--max-lag must be between 1 and {MAX_LAG} minutes, got {self.max_lag}"
            )
        if not 0 < self.alpha < 1:
            raise BqxUserError(f"alpha (lead_lag_alpha) must be between 0 and 1, got {self.alpha}")
        if self.max_rows < self.min_rows:
            raise BqxUserError(
                f"--max-rows must be at least {self.min_rows} for --max-lag {self.max_lag}"
            )
        if self.vol_window != 0 and not 5 <= self.vol_window <= 1440:
            raise BqxUserError(
                f"--vol-window must be 0 (off) or 5 to 1440 minutes, got {self.vol_window}"
            )
        if self.workers < 1:
            raise BqxUserError(f"--workers must be at least 1, got {self.workers}")
        if not ordered_sister_pairs(pairs):
            raise BqxUserError("no two of the pairs share a currency: nothing to test")

    @property
    def min_rows(self) -> int:
        """Fewest aligned rows an ordered pair needs (its largest model has 2·max_lag + 1)."""
        return MIN_ROWS_PER_COEFFICIENT * (2 * self.max_lag + 1)


@dataclass(frozen=True)
class GrangerResult:
    """Every test (BH-adjusted) and the best lag of every tested ordered pair."""

    train: Period
    tested_at: datetime
    alpha: float
    tests: pd.DataFrame  # TEST_COLUMNS, one row per ordered pair and lag
    best: pd.DataFrame  # TEST_COLUMNS + is_significant, one row per ordered pair
    skipped: list[tuple[str, str, str]]  # leader, follower, reason

    @property
    def relationships(self) -> pd.DataFrame:
        """Best lags with p_adjusted < alpha: the rows of bqx.lead_lag_relationships."""
        return self.best[self.best["is_significant"]].reset_index(drop=True)


def ordered_sister_pairs(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """(leader, follower) for every two pairs in scope that share a currency, both ways round."""
    scope = set(pairs)
    return [
        (leader, follower)
        for follower in pairs
        for leader in sister_pairs(follower)
        if leader in scope
    ]


# ---------------------------------------------------------------------------- reading


def grid_minutes(train: Period) -> int:
    """Slots of the train period's 1-minute grid; slot i is train.start_utc + i minutes."""
    return math.ceil((train.end_utc - train.start_utc).total_seconds() / 60)


def load_changes(conn: psycopg2.extensions.connection, pair: str, train: Period) -> np.ndarray:
    """One pair's minute changes of bqx_60 in the train period, on the train grid.

    Differencing makes the series stationary. It is done on the grid, not row to row, so a
    slot is NaN unless both it and the minute before have a row: a change is never taken
    across a weekend, an outage or a window warm-up. Rows come through a server-side cursor
    in batches; what stays is one float per train minute (2.5 MB per pair for a 0.6 year).
    """
    pair = validate_pair(pair)
    level = np.full(grid_minutes(train), np.nan)
    with conn.cursor(name=f"granger_{pair.lower()}") as cur:
        cur.itersize = _FETCH_ROWS
        cur.execute(
            """
            select floor(extract(epoch from ts_utc - %(start)s) / 60)::bigint, bqx_60
            from bqx.bqx_values
            where pair = %(pair)s and ts_utc >= %(start)s and ts_utc < %(end)s
            """,
            {"pair": pair, "start": train.start_utc, "end": train.end_utc},
        )
        while batch := cur.fetchmany(_FETCH_ROWS):
            rows = np.asarray(batch, dtype=np.float64)
            level[rows[:, 0].astype(np.int64)] = rows[:, 1]
    changes = np.full_like(level, np.nan)
    changes[1:] = np.diff(level)
    return changes


def load_training_changes(
    conn: psycopg2.extensions.connection,
    pairs: Sequence[str],
    train: Period,
    on_step: ProgressCallback | None = None,
) -> dict[str, np.ndarray]:
    """Minute changes of every pair in scope; a clear error when a pair has no training rows."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass('bqx.bqx_values')")
        if cur.fetchone()[0] is None:
            raise BqxUserError("bqx.bqx_values does not exist yet: run `bqx build` first")
    changes: dict[str, np.ndarray] = {}
    for done, pair in enumerate(pairs, start=1):
        changes[pair] = load_changes(conn, pair, train)
        if not np.isfinite(changes[pair]).any():
            raise BqxUserError(
                f"bqx.bqx_values has no rows of {pair} in the train period "
                f"({train.start_utc:%Y-%m-%d %H:%M} to {train.end_utc:%Y-%m-%d %H:%M} UTC): "
                "ingest its bars and run `bqx build`"
            )
        found = int(np.isfinite(changes[pair]).sum())
        log.info("%s: %d minute changes in the train period", pair, found)
        if on_step:
            on_step("reading", done, len(pairs))
    return changes


def run_tests(
    changes: dict[str, np.ndarray],
    config: GrangerConfig,
    on_step: ProgressCallback | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Every ordered sister pair's lag tests with raw p-values, in a pool of config.workers."""
    ordered = ordered_sister_pairs(config.pairs)
    tasks = [(leader, follower, config.max_lag, config.max_rows) for leader, follower in ordered]
    outcomes: dict[tuple[str, str], list[LagTest] | str] = {}
    if config.workers == 1:
        with threadpool_limits(1):
            init_worker(changes)
            for done, task in enumerate(tasks, start=1):
                outcomes[task[:2]] = run_task(task)
                if on_step:
                    on_step("testing", done, len(tasks))
        WORKER_CHANGES.clear()
    else:
        # spawn, not fork: the caller may run threads (a progress bar) that fork would copy.
        # Workers import only numpy (models_ml.granger.stats), so they start in a second.
        with ProcessPoolExecutor(
            max_workers=min(config.workers, len(tasks)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(changes,),
        ) as pool:
            futures = {pool.submit(run_task, task): task[:2] for task in tasks}
            for done, future in enumerate(as_completed(futures), start=1):
                outcomes[futures[future]] = future.result()
                if on_step:
                    on_step("testing", done, len(tasks))
    rows, skipped = [], []
    for leader, follower in ordered:
        outcome = outcomes[(leader, follower)]
        if isinstance(outcome, str):
            log.warning("%s → %s not tested: %s", leader, follower, outcome)
            skipped.append((leader, follower, outcome))
            continue
        rows += [{"leader": leader, "follower": follower, **vars(test)} for test in outcome]
    tests = pd.DataFrame(rows)
    if tests.empty:
        return tests, skipped
    p_values = f_test_p_values(tests["f_stat"], tests["lag_minutes"], tests["df_resid"])
    return tests.assign(p_value=p_values).drop(columns="df_resid"), skipped


def f_test_p_values(f_stat: ArrayLike, lag: ArrayLike, df_resid: ArrayLike) -> np.ndarray:
    """P(F(lag, df_resid) > f_stat), vectorised (in the main process: workers skip scipy)."""
    return stats.f.sf(np.asarray(f_stat, dtype=float), lag, df_resid)


# ---------------------------------------------------------------------------- selection


def adjust_p_values(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add p_adjusted: Benjamini-Hochberg over every test (all ordered pairs × all lags)."""
    adjusted = multipletests(tests["p_value"].to_numpy(), alpha=alpha, method="fdr_bh")[1]
    return tests.assign(p_adjusted=adjusted)[TEST_COLUMNS]


def best_lags(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per ordered pair, the lag that best shows the link, and whether it is significant.

    Among the pair's significant lags, the one with the largest F; when none is significant,
    the smallest p_adjusted (ties: larger F). An ordered pair is significant exactly when its
    smallest p_adjusted is below alpha, as with a smallest-p rule, but the lag differs: the
    lag-L test is the block of lags 1…L, so with a strong link at k the block's χ² keeps
    growing a little past k (each extra lag adds its noise) and p keeps falling at k+1, k+2,
    while F, the evidence per lag, peaks at k. On 5,800 raw rows of the generated market the
    smallest p put AUDUSD→NZDUSD (planted at 7) at 8 (p 1.7e-83 against 5.2e-83); F puts it
    at 7. Once p-values underflow to 0 (strong links, 60,000 rows) a smallest-p rule falls
    back to its tie-break on F and agrees with this one.
    """
    significant = tests["p_adjusted"] < alpha
    ranked = tests.assign(
        is_significant=significant,
        rank_p=tests["p_adjusted"].where(~significant, 0.0),  # significant lags: F decides
    ).sort_values(
        ["leader", "follower", "is_significant", "rank_p", "f_stat"],
        ascending=[True, True, False, True, False],
    )
    best = ranked.groupby(["leader", "follower"], sort=False).head(1)
    return best.drop(columns="rank_p").reset_index(drop=True)


def discover(
    conn: psycopg2.extensions.connection,
    config: GrangerConfig,
    on_step: ProgressCallback | None = None,
) -> GrangerResult:
    """Read the train period and the pairs' changes, test every ordered sister pair, correct."""
    train = load_periods(conn).train
    log.info("train period %s to %s", train.start_utc, train.end_utc)
    changes = load_training_changes(conn, config.pairs, train, on_step)
    if config.vol_window:
        changes = {pair: standardise(series, config.vol_window) for pair, series in changes.items()}
    raw, skipped = run_tests(changes, config, on_step)
    if raw.empty:
        raise BqxUserError(
            f"no ordered pair has {config.min_rows} aligned training rows for --max-lag "
            f"{config.max_lag}: use more data or a smaller --max-lag"
        )
    tests = adjust_p_values(raw, config.alpha)
    return GrangerResult(
        train=train,
        tested_at=datetime.now(UTC),
        alpha=config.alpha,
        tests=tests,
        best=best_lags(tests, config.alpha),
        skipped=skipped,
    )


# ---------------------------------------------------------------------------- storage


def write_results(
    conn: psycopg2.extensions.connection, result: GrangerResult, pairs: Sequence[str]
) -> None:
    """Replace the rows of the ordered pairs among `pairs` in one transaction.

    Rows of ordered pairs with a pair outside the scope stay as they were (they were not
    retested); a failure leaves both tables untouched.
    """
    scope = [validate_pair(pair) for pair in pairs]
    period = (result.train.start_utc, result.train.end_utc)
    tests = [
        (*_row_values(row), int(row.n_obs), *period, result.tested_at)
        for row in result.tests.itertuples(index=False)
    ]
    links = [(*_row_values(row), *period) for row in result.relationships.itertuples(index=False)]
    with conn, conn.cursor() as cur:
        apply_ddl(cur, "granger")
        for table in ("granger_tests", "lead_lag_relationships"):
            cur.execute(
                f"delete from bqx.{table} where leader = any(%s) and follower = any(%s)",
                (scope, scope),
            )
        psycopg2.extras.execute_values(
            cur,
            "insert into bqx.granger_tests (leader, follower, lag_minutes, f_stat, p_value, "
            "p_adjusted, effect_size, n_obs, train_start, train_end, tested_at) values %s",
            tests,
            page_size=1000,
        )
        psycopg2.extras.execute_values(
            cur,
            "insert into bqx.lead_lag_relationships (leader, follower, lag_minutes, f_stat, "
            "p_value, p_adjusted, effect_size, train_start, train_end) values %s",
            links,
        )
    log.info("wrote %d tests and %d lead-lag relationships", len(tests), len(links))


def _row_values(row) -> tuple:
    """Plain Python values (no numpy scalars) of the columns both tables share."""
    return (
        validate_pair(row.leader),
        validate_pair(row.follower),
        int(row.lag_minutes),
        float(row.f_stat),
        float(row.p_value),
        float(row.p_adjusted),
        float(row.effect_size),
    )
