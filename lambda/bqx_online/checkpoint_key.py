"""Checkpoints you can trust: an HMAC-SHA256 of each checkpoint's bytes is recorded beside its
version (a column of bqx.online_checkpoints, a field of the S3 pointer) and checked before the
bytes are unpickled.

A checkpoint is a pickle, and unpickling runs code. The version rows and the pointer live in
the database (or the bucket), so a plain hash stored there would not help: whoever can write
the row can write the hash. The digest is therefore keyed with a secret the learner's host
holds and the store does not: BQX_ONLINE_CHECKPOINT_KEY (the Lambda's, a NoEcho parameter of
template.yaml), else a 32-byte key file created once with mode 0600 under
$BQX_HOME/artifacts/online/. Write access to the database or the bucket can then point a
pair at other bytes, but those bytes are refused, never unpickled (issue 18, case 13). A
checkpoint written before digests existed is refused the same way; `--fresh` starts over.
HMAC-SHA256 costs about 2.5 ms per MB of checkpoint here (measured, 2-core machine).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bqx.errors import BqxUserError

KEY_ENV = "BQX_ONLINE_CHECKPOINT_KEY"
KEY_FILE = "checkpoint.key"


class CheckpointRefused(BqxUserError):
    """The checkpoint's bytes do not match the digest recorded beside its version."""


@dataclass(frozen=True, repr=False)
class CheckpointKey:
    secret: bytes

    @classmethod
    def load(cls, env: Mapping[str, str], key_dir: Path) -> CheckpointKey:
        """The key from `env`'s BQX_ONLINE_CHECKPOINT_KEY, else from (or, the first time,
        into) key_dir/checkpoint.key."""
        given = env.get(KEY_ENV, "").strip()
        if given:
            return cls(given.encode())
        path = Path(key_dir) / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = secrets.token_hex(32).encode()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another learner made it first: use theirs
                return cls(path.read_bytes().strip())
            with os.fdopen(fd, "wb") as handle:
                handle.write(fresh)
        return cls(path.read_bytes().strip())

    def digest(self, blob: bytes) -> str:
        return hmac.new(self.secret, blob, hashlib.sha256).hexdigest()

    def check(self, blob: bytes, recorded: str | None, what: str) -> bytes:
        """`blob` when its digest is the recorded one; else CheckpointRefused."""
        if not recorded or not hmac.compare_digest(self.digest(blob), recorded):
            reason = "has no recorded digest" if not recorded else "does not match its digest"
            raise CheckpointRefused(
                f"{what} {reason}: refusing to unpickle it (changed by someone, or written "
                f"with another {KEY_ENV}); `bqx online replay --fresh` starts the pair over"
            )
        return blob
