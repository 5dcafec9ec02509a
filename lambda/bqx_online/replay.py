"""History through the handler's step on a simulated clock (`replay`), and the same step on the
wall clock for live data (`serve`, which wakes when bars commit: see wakeup.py).

Replay reads the span's features once into memory (binary COPY, month by month), then calls
OnlineService.step for every minute at which some pair has features, as fast as it can: the
clock is the minute being replayed, so "60 minutes later" is 60 replayed minutes later.
Checkpoints are taken every `checkpoint_every` replayed minutes and at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bqx_online.batched import BatchedStore
from bqx_online.records import DriftEvent
from bqx_online.service import OnlineService

log = logging.getLogger(__name__)

# serve steps a backlog in chunks of at most this many minutes, each read at once (`prefetch`):
# a day of 28 pairs' inputs is a few MB in memory
BACKLOG_CHUNK_MINUTES = 1440
# a learner checkpoints once an hour of backlog minutes (every 15 when live): a quarter of the
# checkpoints, a crash inside a backlog re-learns at most an hour more
BACKLOG_CHECKPOINT_EVERY = 60

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class ReplayResult:
    minutes: int = 0
    predicted: int = 0
    learned: int = 0
    skipped: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    drift_events: list[DriftEvent] = field(default_factory=list)

    @property
    def minutes_per_second(self) -> float:
        return self.minutes / self.seconds if self.seconds else 0.0


def replay(
    service: OnlineService,
    minutes: Sequence[datetime],
    progress: ProgressCallback | None = None,
) -> ReplayResult:
    """Step through `minutes` in order; checkpoint what is unsaved at the end."""
    result = ReplayResult()
    started = time.perf_counter()
    every = max(1, len(minutes) // 200)
    for done, minute in enumerate(minutes, start=1):
        report = service.step(minute)
        result.minutes += 1
        result.predicted += report.predicted
        result.learned += report.learned
        result.skipped += report.skipped
        result.checkpoints += report.checkpoints
        result.step_seconds.append(report.seconds)
        result.drift_events.extend(report.drift_events)
        if progress and (done % every == 0 or done == len(minutes)):
            progress("replaying minutes", done, len(minutes))
    if minutes:
        result.checkpoints += service.flush(minutes[-1])
    result.seconds = time.perf_counter() - started
    log.info(
        "replayed %d minutes in %.1f s (%.0f minutes/s), %d learned, %d drift events",
        result.minutes,
        result.seconds,
        result.minutes_per_second,
        result.learned,
        len(result.drift_events),
    )
    return result


def serve(
    service: OnlineService,
    latest_minute: Callable[[], datetime | None],
    max_steps: int | None = None,
    poll_seconds: float = 5.0,
    wait: Callable[[float], object] = time.sleep,
    on_step: Callable[[object], None] | None = None,
    minutes_between: Callable[[datetime, datetime], Sequence[datetime]] | None = None,
    until: datetime | None = None,
    prefetch: Callable[[datetime, datetime], AbstractContextManager[object]] | None = None,
) -> int:
    """On the wall clock: whenever newer minutes of features exist, step each of them in order
    (only the newest on the first look: serve does not replay history). Between looks it
    `wait`s: a BarsListener's wait returns when bars commit (LISTEN/NOTIFY), time.sleep is the
    plain poll. `latest_minute` is the look (`bqx online serve`'s runs the tail build and the
    model step first, under the build lock). A backlog (more than one minute at a look) is
    stepped in chunks of BACKLOG_CHUNK_MINUTES, each inside `prefetch(start, last)`
    (PostgresFeatures.prefetched: the chunk's rows read at once); the steps, and so the
    predictions, are those of minute-by-minute stepping. It stops after max_steps steps, or
    once it has stepped a minute at or after `until`. Returns steps."""
    last: datetime | None = None
    steps = 0
    while (max_steps is None or steps < max_steps) and (
        until is None or last is None or last < until
    ):
        newest = latest_minute()
        if newest is not None and (last is None or newest > last):
            if last is None or minutes_between is None:
                todo: Sequence[datetime] = [newest]
            else:
                todo = minutes_between(last, newest) or [newest]
            stepped = step_minutes(
                service,
                todo,
                prefetch,
                on_step,
                lambda done, minute, before=steps: (
                    (max_steps is not None and before + done >= max_steps)
                    or (until is not None and minute >= until)
                ),
            )
            steps += stepped
            last = todo[stepped - 1]
            continue
        # wait for new bars (or, polling, the next minute boundary)
        now = datetime.now(UTC)
        next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        wait(max(0.5, min(poll_seconds, (next_minute - now).total_seconds())))
    if last is not None:
        service.flush(last)
    return steps


@contextmanager
def _batched(service: OnlineService, first: datetime, backlog: bool) -> Iterator[None]:
    """For a backlog chunk from `first` (`backlog`): the service's store wrapped in a
    BatchedStore whose mirror starts where the chunk's steps may ask for predictions
    (OnlineConfig.fresh_learning_reach before `first`). What is buffered is written at the
    end, also when the chunk ends by an exception (Ctrl-C, SIGTERM: serve then checkpoints,
    and a checkpoint must not have learned predictions that were never stored). Measured
    (cProfile of 90 catch-up steps of 28 pairs): the per-pair reads of the matured
    predictions were 6.1 s of 39 s."""
    if not backlog:
        yield
        return
    inner = service.store
    since = first - service.config.fresh_learning_reach
    batched = BatchedStore(inner, batch_minutes=60, since=since)
    service.store = batched
    try:
        yield
    finally:
        service.store = inner
        batched.flush()


def step_minutes(
    service: OnlineService,
    minutes: Sequence[datetime],
    prefetch: Callable[[datetime, datetime], AbstractContextManager[object]] | None = None,
    on_step: Callable[[object], None] | None = None,
    stop: Callable[[int, datetime], bool] | None = None,
) -> int:
    """Step `minutes` in order, in chunks of BACKLOG_CHUNK_MINUTES. A chunk of more than one
    minute (a backlog) is stepped inside `prefetch(start, last)` (`start`: the chunk's first
    minute less OnlineConfig.steady_learning_reach, whose features its learning reads), with
    the learners' checkpoints every BACKLOG_CHECKPOINT_EVERY minutes
    (OnlineService.checkpoints_spaced) and the store's reads of predictions answered from
    memory, its writes sent in batches (_batched). After each step `stop(steps so far,
    minute)` may end it. Returns the steps taken."""
    steps = 0
    reach = service.config.steady_learning_reach
    for at in range(0, len(minutes), BACKLOG_CHUNK_MINUTES):
        chunk = minutes[at : at + BACKLOG_CHUNK_MINUTES]
        backlog = len(chunk) > 1
        read = prefetch(chunk[0] - reach, chunk[-1]) if prefetch and backlog else nullcontext()
        spaced = service.checkpoints_spaced(
            BACKLOG_CHECKPOINT_EVERY if backlog else None, chunk[-1]
        )
        with read, _batched(service, chunk[0], backlog), spaced:
            for minute in chunk:
                report = service.step(minute)
                steps += 1
                if on_step:
                    on_step(report)
                if stop and stop(steps, minute):
                    return steps  # the blocks above close (flush, spacing ends) as they exit
    return steps
