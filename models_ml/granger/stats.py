"""The statistics of one ordered pair, in numpy only: pool workers import this module alone,
so a spawned worker starts in about a second instead of importing pandas, scipy and statsmodels.

See discovery.py for the method; p-values are computed from the F statistics in the
main process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

# An ordered pair is tested only with this many aligned rows per coefficient of its largest model.
MIN_ROWS_PER_COEFFICIENT = 10


@dataclass(frozen=True)
class LagTest:
    """One Granger F test of the leader's last `lag_minutes` changes."""

    lag_minutes: int
    f_stat: float  # ((SSR_r − SSR_u) / lag) / (SSR_u / df_resid)
    df_resid: int  # n_obs − 2·lag − 1
    effect_size: float  # partial R² of the leader block: (SSR_r − SSR_u) / SSR_r
    n_obs: int


class UntestablePairError(ValueError):
    """An ordered pair without enough aligned rows, or with a degenerate regression."""


def standardise(changes: np.ndarray, window: int) -> np.ndarray:
    """Each change divided by the RMS of the `window` changes before it (NaN without them).

    Weighted least squares by a point-in-time volatility estimate: it keeps the F test's
    constant-variance assumption close to true under volatility clustering. Only earlier
    minutes enter the scale, and a window reaching across a gap gives NaN, like a lag would.
    """
    finite = np.isfinite(changes)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, changes, 0.0) ** 2)])
    counts = np.concatenate([[0], np.cumsum(finite)])
    slots = np.arange(window, len(changes))
    mean_square = (sums[slots] - sums[slots - window]) / window  # slots t − window … t − 1
    usable = (counts[slots] - counts[slots - window] == window) & (mean_square > 0)
    scaled = np.full_like(changes, np.nan)
    scaled[slots[usable]] = changes[slots[usable]] / np.sqrt(mean_square[usable])
    return scaled


def lag_design(follower: np.ndarray, leader: np.ndarray, max_lag: int, max_rows: int) -> np.ndarray:
    """Columns [follower lags 1…max_lag | leader lags 1…max_lag | follower now].

    Lag k is the grid slot k minutes earlier, so a row whose lag block reaches across a gap
    holds a NaN and is dropped: every row is max_lag + 1 consecutive minutes of both pairs.
    All lags share these rows, so their tests compare like with like. Only the most recent
    `max_rows` rows are kept (the budget that keeps a full year practical).
    """
    if len(follower) <= max_lag:
        return np.empty((0, 2 * max_lag + 1))
    own = sliding_window_view(follower, max_lag + 1)  # row j: minutes j … j + max_lag (= t)
    lead = sliding_window_view(leader, max_lag + 1)[:, :-1]  # minutes t − max_lag … t − 1
    complete = sliding_window_view(np.isfinite(follower), max_lag + 1).all(axis=1)
    complete &= sliding_window_view(np.isfinite(leader), max_lag + 1)[:, :-1].all(axis=1)
    rows = np.flatnonzero(complete)[-max_rows:]
    return np.hstack([own[rows, -2::-1], lead[rows, ::-1], own[rows, -1:]])


def granger_f_tests(design: np.ndarray, max_lag: int) -> list[LagTest]:
    """The ssr F test and partial R² of the leader block for every lag 1 … max_lag.

    With an intercept, OLS on centred columns leaves the same residuals (Frisch-Waugh), so one
    Gram matrix of the centred design serves all 2 × max_lag nested regressions (rescaled to
    unit diagonal, a correlation matrix, so the solves are well conditioned);
    F = ((SSR_r − SSR_u) / L) / (SSR_u / (n − 2L − 1)) as in statsmodels' ssr_ftest.
    """
    n = design.shape[0]
    centred = design - design.mean(axis=0)
    gram = centred.T @ centred
    scale = np.sqrt(np.diag(gram))
    if not (scale > 0).all():
        raise UntestablePairError("a lag column is constant")
    gram = gram / np.outer(scale, scale)
    target = 2 * max_lag
    tests = []
    for lag in range(1, max_lag + 1):
        own = list(range(lag))
        ssr_restricted = _ssr(gram, own, target)
        ssr_unrestricted = _ssr(gram, own + list(range(max_lag, max_lag + lag)), target)
        df_resid = n - (2 * lag + 1)
        gain = max(ssr_restricted - ssr_unrestricted, 0.0)
        f_stat = gain / lag / (ssr_unrestricted / df_resid)
        tests.append(LagTest(lag, f_stat, df_resid, gain / ssr_restricted, n))
    return tests


def _ssr(gram: np.ndarray, columns: list[int], target: int) -> float:
    """Residual sum of squares of column `target` on `columns`, from the normal equations."""
    xtx = gram[np.ix_(columns, columns)]
    xty = gram[columns, target]
    ssr = float(gram[target, target] - xty @ np.linalg.solve(xtx, xty))
    if not ssr > 0:
        raise UntestablePairError("the regression fits perfectly")
    return ssr


def ordered_pair_tests(
    leader: np.ndarray, follower: np.ndarray, max_lag: int, max_rows: int
) -> list[LagTest]:
    """All lag tests of one ordered pair from the two pairs' grid changes."""
    design = lag_design(follower, leader, max_lag, max_rows)
    needed = MIN_ROWS_PER_COEFFICIENT * (2 * max_lag + 1)
    if len(design) < needed:
        raise UntestablePairError(f"{len(design)} aligned training rows, {needed} needed")
    try:
        return granger_f_tests(design, max_lag)
    except np.linalg.LinAlgError as err:
        raise UntestablePairError(f"singular regression ({err})") from err


# Pool workers get every pair's changes once, at start-up, instead of with each task.
WORKER_CHANGES: dict[str, np.ndarray] = {}


def init_worker(changes: dict[str, np.ndarray]) -> None:
    """Pool initializer (and the in-process path): every pair's changes, once, and one BLAS
    thread. The matrices are small; with several BLAS threads per worker on a busy machine
    the threads spin against each other (measured at 30,000 rows: 2.7 s per ordered pair
    instead of 0.3 s).
    """
    threadpool_limits(1)
    WORKER_CHANGES.update(changes)


def run_task(task: tuple[str, str, int, int]) -> list[LagTest] | str:
    """One ordered pair in a worker: its tests, or why it could not be tested."""
    leader, follower, max_lag, max_rows = task
    try:
        return ordered_pair_tests(
            WORKER_CHANGES[leader], WORKER_CHANGES[follower], max_lag, max_rows
        )
    except UntestablePairError as err:
        return str(err)
