"""A job part's checkpoint: what the next part's worker needs if this one is lost (opaque to the
controller, which keeps the latest one per job and hands it over as ``EgressJob.previous``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Checkpoint:
    filename: str
    """The part's file name in its storage (its FileInfo.filename)."""
    path: str
    """Where it is written (in place for local storage, else the worker's work directory)."""
    started_at: int
    """Unix ns of its first frame."""

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @staticmethod
    def decode(data: bytes) -> Checkpoint | None:
        try:
            fields = json.loads(data)
            return Checkpoint(str(fields["filename"]), str(fields["path"]), int(fields["started_at"]))
        except (ValueError, KeyError, TypeError):
            return None
