"""A pair's learner (ensemble + drift monitor + how far it has learned) and its checkpoint bytes.

`learned_through` is the newest prediction minute whose outcome the learner has learned. It is
saved inside the checkpoint, with the model, so the two cannot disagree: after a crash, the
restarted learner resumes from the last checkpoint and learns exactly the outcomes after its
watermark — none twice, none lost. The `learned_at` column of the predictions is written only
after the checkpoint that contains the learning, as a record, never read back as the truth.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime

from bqx_online.config import OnlineConfig
from bqx_online.drift import DriftMonitor
from bqx_online.ensemble import AdaptiveEnsemble

FORMAT_VERSION = 7  # 3: zero member, Hedge losses, target scale; 4: two-CUSUM drift monitor;
# 5: the trailing scale tracks the outcome's increments (ensemble.TrailingScale); 6: the linear
# member's inputs are clipped (ensemble.clip_inputs); 7: evidence-gated weights (the config's
# margin, ensemble.gated_hedge)


@dataclass
class PairState:
    pair: str
    ensemble: AdaptiveEnsemble
    monitor: DriftMonitor
    learned_through: datetime | None = None
    version: int = 0  # the checkpoint version this state was loaded from or saved as
    dirty: bool = False  # learned since the last checkpoint

    @classmethod
    def fresh(cls, pair: str, config: OnlineConfig) -> PairState:
        return cls(pair, AdaptiveEnsemble(config.ensemble), DriftMonitor(config.drift))

    def to_bytes(self) -> bytes:
        payload = {
            "format": FORMAT_VERSION,
            "pair": self.pair,
            "ensemble": self.ensemble,
            "monitor": self.monitor,
            "learned_through": self.learned_through,
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes, version: int) -> PairState:
        # Checkpoints are written by this code into our own store; never load untrusted bytes.
        payload = pickle.loads(blob)  # noqa: S301
        if payload.get("format") != FORMAT_VERSION:
            raise ValueError(f"checkpoint format {payload.get('format')} is not {FORMAT_VERSION}")
        return cls(
            payload["pair"],
            payload["ensemble"],
            payload["monitor"],
            payload["learned_through"],
            version=version,
        )
