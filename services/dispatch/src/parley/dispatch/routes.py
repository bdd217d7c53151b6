"""Subjects dispatch serves (all under ``subjects.dispatch_rpc``)."""

from __future__ import annotations

from parley.bus import subjects

QUEUE = subjects.DISPATCH_QUEUE

# edge -> any instance (queue group): a worker connected.
WORKER_OPEN = subjects.dispatch_rpc("WorkerOpen")

# LiveKit's AgentDispatchService methods (any instance, queue group).
API_METHODS = ("CreateDispatch", "DeleteDispatch", "ListDispatch")


def worker_frames(instance: str) -> str:
    """edge -> the instance owning a worker connection: WorkerFrame."""
    return subjects.dispatch_rpc(f"instance.{instance}.frame")


def job_offers(instance: str) -> str:
    """any instance -> the instance owning a worker: OfferJobRequest."""
    return subjects.dispatch_rpc(f"instance.{instance}.offer")
