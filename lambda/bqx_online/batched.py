"""A replay's store: the service's reads answered from memory, its writes sent in batches.

The live handler steps one minute per invocation and must write each minute's rows before it
returns. A replay steps tens of thousands of minutes in one process, and there the per-minute
round trips were a large part of the cost: one INSERT of the minute's predictions, one SELECT
per pair for the predictions whose outcome matured, one INSERT of weights and one of the step's
timing, each its own transaction. `BatchedStore` wraps any OnlineStore for a replay driver:

- `predictions()` is answered from a mirror of the pairs' prediction rows: those the wrapped
  store held when the pair was first touched (one query per pair) plus every one put since;
- predictions, weights and step timings are buffered and written `batch_minutes` minutes at a
  time, in the order the service produced them, with the wrapped store's own methods (so the
  same insert-if-absent rules apply);
- before a checkpoint is saved everything buffered is written, and `mark_learned` (which the
  service calls only after the checkpoint) is written after it: the contract of service.py —
  predictions stored before learning, the checkpoint before the learned marks — holds for what
  reaches the wrapped store. A crash loses at most the buffered rows after the last
  checkpoint, which the restarted replay predicts again from that checkpoint's learner;
- drift events and alarms pass straight through (rare, and an alarm should not wait).

Nothing here changes what the learner sees or learns; tests/python/test_online.py replays a
stream through it and through the plain store and compares every stored row. serve wraps its
store in one for each backlog chunk it catches up (replay.step_minutes), its mirror starting
where the chunk's steps may look back to (`since`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import UTC, datetime

from bqx_online.records import CheckpointInfo, DriftEvent, Learned, Prediction, Snapshot, WeightRow
from bqx_online.storage import OnlineStore

EPOCH_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_CEILING = datetime(9999, 1, 1, tzinfo=UTC)


class BatchedStore:
    """An OnlineStore for replay drivers (see the module docstring)."""

    def __init__(
        self, store: OnlineStore, batch_minutes: int = 1440, since: datetime = EPOCH_FLOOR
    ) -> None:
        """`since`: the mirror holds the rows after it (serve's backlog chunk: the oldest
        minute its steps may ask for), not a pair's whole history."""
        self.store = store
        self.batch_minutes = batch_minutes
        self.since = since
        # (pair, horizon) -> ts-sorted list of keys and the predictions by ts
        self._keys: dict[tuple[str, int], list[datetime]] = {}
        self._rows: dict[tuple[str, int], dict[datetime, Prediction]] = {}
        self._predictions: list[Prediction] = []
        self._weights: list[WeightRow] = []
        self._steps: list[tuple[datetime, float, int, Mapping[str, float]]] = []
        self._minutes = 0

    # ------------------------------------------------------------------ the mirror
    def _mirror(self, pair: str, horizon: int) -> tuple[list[datetime], dict]:
        key = (pair, horizon)
        if key not in self._rows:
            stored = self.store.predictions(pair, horizon, self.since, EPOCH_CEILING)
            self._rows[key] = {p.ts_utc: p for p in stored}
            self._keys[key] = sorted(self._rows[key])
        return self._keys[key], self._rows[key]

    def put_predictions(self, predictions: list[Prediction]) -> list[bool]:
        written = []
        for p in predictions:
            keys, rows = self._mirror(p.pair, p.horizon_minutes)
            if p.ts_utc in rows:
                written.append(False)
                continue
            rows[p.ts_utc] = p
            if keys and p.ts_utc < keys[-1]:
                bisect.insort(keys, p.ts_utc)
            else:
                keys.append(p.ts_utc)
            self._predictions.append(p)
            written.append(True)
        return written

    def predictions(
        self, pair: str, horizon: int, after: datetime, until: datetime
    ) -> list[Prediction]:
        """Rows with after < ts_utc <= until. Rows at or before `after` are then forgotten:
        the service's `after` (its watermark, or its lookback) only grows along a replay, and
        a month of 28 pairs' rows would otherwise stay in memory."""
        if after < self.since:  # older than the mirror: the wrapped store answers
            self.flush()
            return self.store.predictions(pair, horizon, after, until)
        keys, rows = self._mirror(pair, horizon)
        lo = bisect.bisect_right(keys, after)
        hi = bisect.bisect_right(keys, until)
        found = [rows[ts] for ts in keys[lo:hi]]
        for ts in keys[:lo]:
            del rows[ts]
        del keys[:lo]
        return found

    # ------------------------------------------------------------------ buffered writes
    def put_weights(self, rows: list[WeightRow]) -> None:
        self._weights.extend(rows)

    def put_step_metrics(
        self, ts_utc: datetime, seconds: float, pairs: int, parts: Mapping[str, float]
    ) -> None:
        self._steps.append((ts_utc, seconds, pairs, dict(parts)))
        self._minutes += 1
        if self._minutes >= self.batch_minutes:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered, predictions first."""
        if self._predictions:
            self.store.put_predictions(self._predictions)
            self._predictions = []
        if self._weights:
            self.store.put_weights(self._weights)
            self._weights = []
        for step in self._steps:
            self.store.put_step_metrics(*step)
        self._steps = []
        self._minutes = 0

    # ------------------------------------------------------------------ in order
    def save_checkpoint(self, pair: str, snapshot: Snapshot) -> CheckpointInfo:
        self.flush()  # the predictions a checkpoint has learned are stored before it
        return self.store.save_checkpoint(pair, snapshot)

    def mark_learned(self, learned: list[Learned]) -> None:
        self.flush()
        self.store.mark_learned(learned)

    def put_drift_events(self, events: list[DriftEvent]) -> list[bool]:
        return self.store.put_drift_events(events)

    # ------------------------------------------------------------------ pass-through
    def ensure(self) -> None:
        self.store.ensure()

    def drift_events(self, pair: str) -> list[DriftEvent]:
        return self.store.drift_events(pair)

    def alert(self, events: list[DriftEvent]) -> None:
        self.store.alert(events)

    def load_checkpoint(self, pair: str) -> tuple[CheckpointInfo, bytes] | None:
        return self.store.load_checkpoint(pair)

    def reset(self, pair: str) -> None:
        self.flush()
        self.store.reset(pair)
        for key in [k for k in self._rows if k[0] == pair]:
            del self._rows[key]
            del self._keys[key]

    def close(self) -> None:
        self.flush()
        self.store.close()
