"""One pair's ensemble and drift monitor run over a stream in memory, outcomes learned when
they mature (`horizon` minutes after the prediction), as the service does but without a store:
what the drift and weighting benchmarks and tests measure, fast enough for weeks of minutes
(~7 s per generated week with a 3-tree forest).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from bqx_online.config import DriftConfig, EnsembleConfig
from bqx_online.drift import DriftMonitor
from bqx_online.ensemble import ZERO_MEMBER, AdaptiveEnsemble
from bqx_online.features import MemoryFeatures


@dataclass
class Prequential:
    """Per matured outcome, in learning order (index j: the prediction of minute j)."""

    members: list[str]
    ts: list[datetime] = field(default_factory=list)  # the prediction minute
    prediction: list[float] = field(default_factory=list)
    member_predictions: list[list[float]] = field(default_factory=list)
    realized: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)  # the target scale when it was learned
    skill: list[float] = field(default_factory=list)  # AdaptiveEnsemble.skill
    direction: list[float] = field(default_factory=list)  # AdaptiveEnsemble.direction
    alarms: list[datetime] = field(default_factory=list)  # minutes the evidence was known

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ensemble prediction, member predictions, realized, scale) as arrays."""
        return (
            np.array(self.prediction),
            np.array(self.member_predictions),
            np.array(self.realized),
            np.array(self.scale),
        )

    def zero_column(self) -> int:
        return self.members.index(ZERO_MEMBER)


def run_stream(
    source: MemoryFeatures,
    pair: str,
    horizon_minutes: int,
    ensemble: EnsembleConfig | None = None,
    drift: DriftConfig | None = None,
) -> Prequential:
    """Predict every minute of `pair`; learn each outcome and feed the monitor its skill and
    direction at the minute it matures (its prediction minute + horizon)."""
    model, monitor = AdaptiveEnsemble(ensemble), DriftMonitor(drift)
    horizon = timedelta(minutes=horizon_minutes)
    pending: deque[tuple[datetime, dict, float, dict]] = deque()
    out: Prequential | None = None
    for t in source.minutes():
        while pending and pending[0][0] + horizon <= t:
            ts, x, value, members = pending.popleft()
            y = source.realized(pair, ts + horizon)
            if y is None:
                continue
            scale = model.scale  # the unit the losses of this outcome are counted in
            at = int(ts.timestamp()) // 60
            unit = model.prediction_scale(at, horizon_minutes)  # the unit ŷ was made in
            model.learn_one(x, y, members, at)
            skill, direction = model.skill(y, value, unit), model.direction(y, value, unit)
            out.ts.append(ts)
            out.prediction.append(value)
            out.member_predictions.append([members[name] for name in out.members])
            out.realized.append(y)
            out.scale.append(scale)
            out.skill.append(skill)
            out.direction.append(direction)
            out.alarms += [ts + horizon for _ in monitor.update(skill, direction)]
        x = source.features(t, [pair]).get(pair)
        if x is None:
            continue
        value, members, _ = model.predict_members(x)
        if out is None:
            out = Prequential(list(members))
        pending.append((t, x, value, members))
    return out if out is not None else Prequential([])
