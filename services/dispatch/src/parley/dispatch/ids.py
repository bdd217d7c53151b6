"""Typed ids of dispatch records; minted with ``parley.protocol.ids.new_id``."""

from __future__ import annotations

from typing import NewType

WorkerID = NewType("WorkerID", str)
JobID = NewType("JobID", str)
DispatchID = NewType("DispatchID", str)
