"""One minute of the online learner, in the order the handler promises:

1. read the minute's features for each pair in the universe;
2. predict and store the predictions (pair, ts, horizon, value, member values, weights)
   before anything else — a stored prediction is never overwritten;
3. learn, once each, the predictions of `horizon` minutes earlier (and any older ones the
   learner has not learned yet) whose realized bqx_60 is now known;
4. feed their skill against the zero member to the drift monitors; store drift events and
   raise the alarm. An alarm resets no member, and every member learns every outcome
   whatever its weight: the members never depend on the weights, so another weighting can be
   replayed over a run's stored member predictions (bench/online_real.py --score);
5. checkpoint each learner that learned (a new version, then the pointer), and only then
   write `realized` / `learned_at` onto the prediction rows.

Exactly-once learning: each learner's checkpoint carries `learned_through`, the newest
prediction minute it has learned (see state.py). A re-run of a minute finds nothing after the
watermark; a crash anywhere restarts from the last checkpoint and learns what came after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bqx_online.config import OnlineConfig
from bqx_online.features import FeatureSource
from bqx_online.records import STEP_PARTS, DriftEvent, Learned, Prediction, Snapshot, WeightRow
from bqx_online.state import PairState
from bqx_online.storage import OnlineStore

log = logging.getLogger(__name__)


@dataclass
class StepReport:
    ts_utc: datetime
    predicted: int = 0  # predictions written this step
    already_stored: int = 0  # predictions that existed (a re-run of the minute)
    learned: int = 0
    skipped: int = 0  # outcomes that never came (a gap after the prediction)
    drift_events: list[DriftEvent] = field(default_factory=list)
    checkpoints: int = 0
    seconds: float = 0.0
    predict_seconds: float = 0.0  # reading features, predicting, storing predictions
    learn_seconds: float = 0.0  # reading outcomes, learning, drift, weights and events
    checkpoint_seconds: float = 0.0


class OnlineService:
    """Holds one learner per pair (loaded from the store's checkpoints on first use)."""

    def __init__(self, config: OnlineConfig, store: OnlineStore, source: FeatureSource) -> None:
        self.config = config
        self.store = store
        self.source = source
        self.states: dict[str, PairState] = {}
        self._last_checkpoint: dict[str, datetime] = {}
        self._dirty_since: dict[str, datetime] = {}  # learners never checkpointed
        self._unmarked: dict[str, list[Learned]] = {}
        self._spaced = 0  # checkpoints_spaced: minutes between checkpoints in a backlog
        self._spaced_through: datetime | None = None  # the last minute of the last backlog

    # ------------------------------------------------------------------ state
    def state(self, pair: str) -> PairState:
        if pair not in self.states:
            loaded = self.store.load_checkpoint(pair)
            if loaded is None:
                self.states[pair] = PairState.fresh(pair, self.config)
            else:
                info, blob = loaded
                self.states[pair] = PairState.from_bytes(blob, info.version)
                self._last_checkpoint[pair] = info.ts_utc
                log.info(
                    "%s: checkpoint v%d (learned through %s)",
                    pair,
                    info.version,
                    info.learned_through,
                )
        return self.states[pair]

    # ------------------------------------------------------------------ the step
    def step(self, now: datetime, force_checkpoint: bool = False) -> StepReport:
        started = time.perf_counter()
        now = now.astimezone(UTC).replace(second=0, microsecond=0)
        report = StepReport(ts_utc=now)
        pairs = list(self.config.pairs)
        # 1-2: predict and store before anything else
        rows = self.source.features(now, pairs)
        predictions = []
        for pair, x in rows.items():
            state = self.state(pair)
            static = self.source.static_prediction(pair, now) if self.config.use_static else None
            value, members, weights = state.ensemble.predict_members(x, static)
            predictions.append(
                Prediction(pair, now, self.config.horizon_minutes, value, members, weights, static)
            )
        if predictions:
            written = self.store.put_predictions(predictions)
            report.predicted = sum(written)
            report.already_stored = len(written) - report.predicted
        report.predict_seconds = time.perf_counter() - started
        # 3-4: learn the outcomes now known, feed the drift monitors
        weights: list[WeightRow] = []
        for pair in pairs:
            events = self._learn(pair, now, report, weights)
            report.drift_events.extend(events)
        if weights:
            self.store.put_weights(weights)
        if report.drift_events:
            new = self.store.put_drift_events(report.drift_events)
            fresh = [e for e, is_new in zip(report.drift_events, new, strict=True) if is_new]
            if fresh:
                self.store.alert(fresh)
                for event in fresh:
                    log.warning(
                        "drift on %s at %s (%s): %s",
                        event.pair,
                        event.ts_utc,
                        event.detector,
                        event.evidence,
                    )
        learned_at = time.perf_counter()
        report.learn_seconds = learned_at - started - report.predict_seconds
        # 5: checkpoint, then record what the checkpoint has learned
        for pair in pairs:
            if self._checkpoint_due(pair, now, force_checkpoint):
                self.checkpoint(pair, now)
                report.checkpoints += 1
        report.seconds = time.perf_counter() - started
        report.checkpoint_seconds = time.perf_counter() - learned_at
        parts = {part: getattr(report, f"{part}_seconds") for part in STEP_PARTS}
        self.store.put_step_metrics(now, report.seconds, len(rows), parts)
        return report

    def _learn(
        self, pair: str, now: datetime, report: StepReport, weights: list[WeightRow]
    ) -> list[DriftEvent]:
        horizon = timedelta(minutes=self.config.horizon_minutes)
        grace = timedelta(minutes=self.config.realized_grace_minutes)
        state = self.state(pair)
        oldest = now - self.config.fresh_learning_reach
        after = max(state.learned_through, oldest) if state.learned_through else oldest
        pending = self.store.predictions(pair, self.config.horizon_minutes, after, now - horizon)
        events: list[DriftEvent] = []
        learned_any = False
        for p in pending:
            outcome_ts = p.ts_utc + horizon
            realized = self.source.realized(pair, outcome_ts)
            x = self.source.features(p.ts_utc, [pair]).get(pair) if realized is not None else None
            if realized is None or x is None:
                if now - outcome_ts < grace:
                    break  # not known yet: wait for it (later ones wait behind it)
                report.skipped += 1  # a gap: the outcome will not come
            else:
                ensemble = state.ensemble
                minute = int(p.ts_utc.timestamp()) // 60
                unit = ensemble.prediction_scale(minute, self.config.horizon_minutes)
                ensemble.learn_one(x, realized, p.member_predictions, minute)
                skill = ensemble.skill(realized, p.prediction, unit)
                direction = ensemble.direction(realized, p.prediction, unit)
                for signal in state.monitor.update(skill, direction):
                    evidence = {
                        **signal.evidence,
                        "prediction_ts_utc": p.ts_utc.isoformat(),
                        "prediction": p.prediction,
                        "realized": realized,
                        "n_learned": ensemble.n_learned_,
                    }
                    events.append(DriftEvent(pair, outcome_ts, signal.detector, evidence))
                self._unmarked.setdefault(pair, []).append(
                    Learned(pair, p.ts_utc, p.horizon_minutes, realized, now)
                )
                report.learned += 1
                learned_any = True
            state.learned_through = p.ts_utc
            state.dirty = True
        if learned_any:
            members = list(pending[-1].member_predictions)
            for member, weight in state.ensemble.weights(members).items():
                weights.append(
                    WeightRow(pair, now, member, weight, state.ensemble.recent_mae(member))
                )
        return events

    def _checkpoint_due(self, pair: str, now: datetime, force: bool) -> bool:
        """A dirty learner checkpoints when forced, at its own phase of the clock
        (checkpoint_phase), which spreads the pairs' checkpoints over the minutes instead of
        stacking them on one, and at the latest `checkpoint_every` minutes after its last
        checkpoint (or its first dirty minute)."""
        state = self.states.get(pair)
        if state is None or not state.dirty:
            return False
        every = self._spaced or self.config.checkpoint_every
        last = self._last_checkpoint.get(pair)
        phase = (self.config.pairs.index(pair) * every) // len(self.config.pairs)
        if force or (checkpoint_phase(now, every) == phase and (last is None or now > last)):
            return True
        # never checkpointed (a fresh learner): counted from the first minute it was dirty,
        # so 28 fresh learners do not all checkpoint on their first learning minute
        since = last if last is not None else self._dirty_since.setdefault(pair, now)
        if self._spaced_through is not None:  # after a backlog: counted from its end
            since = max(since, self._spaced_through)
        return now - since >= timedelta(minutes=every)

    def checkpoint(self, pair: str, now: datetime) -> None:
        state = self.states[pair]
        snapshot = Snapshot(state.to_bytes(), now, state.learned_through, state.ensemble.n_learned_)
        info = self.store.save_checkpoint(pair, snapshot)
        state.version = info.version
        state.dirty = False
        self._last_checkpoint[pair] = now
        marks = self._unmarked.pop(pair, [])
        if marks:
            self.store.mark_learned(marks)

    @contextmanager
    def checkpoints_spaced(self, every: int | None, through: datetime) -> Iterator[None]:
        """Within the block (with `every`) learners checkpoint every `every` minutes, at their
        phases of that cycle, instead of every `checkpoint_every`: serve's catch-up of a
        backlog chunk whose last minute is `through`. After it the usual cycle resumes,
        counted from `through` (not all 28 at the next step). A block ended early (serve's
        --max-steps / --until, an exception) ends serve, which checkpoints every learner. What
        is learned, predicted and stored is the same: exactly-once learning rests on each
        checkpoint's learned_through, not on how often they are taken, and learned_at is the
        step's minute; only fewer checkpoint versions are written, and a crash re-learns more.
        Measured (bench/live.py, one day's backlog of 28 pairs, no trained models): the 2,688
        checkpoints of a 15-minute cycle took 74 s of the 231 s of stepping."""
        if not every:
            yield
            return
        self._spaced = every
        try:
            yield
        finally:
            self._spaced = 0
            self._spaced_through = through.astimezone(UTC).replace(second=0, microsecond=0)

    def flush(self, now: datetime) -> int:
        """Checkpoint every learner with unsaved learning (end of a replay or of `serve`)."""
        done = 0
        for pair in list(self.states):
            if self.states[pair].dirty:
                self.checkpoint(pair, now)
                done += 1
        return done


def checkpoint_phase(now: datetime, every: int) -> int:
    """The minute of `now` in a cycle of `every` minutes of the clock (0 ... every - 1). Pair i
    of n checkpoints at phase i·every // n, so with serve's 15 minutes 28 pairs checkpoint
    about two a minute: bench/live.py measured the step p99 at 2.18 s when all 28 came due
    on the same minute (p50 0.19 s)."""
    return int(now.timestamp() // 60) % every


def run_minutes(service: OnlineService, minutes: Sequence[datetime]) -> list[StepReport]:
    return [service.step(minute) for minute in minutes]
