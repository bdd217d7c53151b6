"""Subjects of the worker relay (the dispatch side derives the same from subjects.dispatch_rpc)."""

from __future__ import annotations

from parley.bus import subjects

WORKER_OPEN = subjects.dispatch_rpc("WorkerOpen")
"""edge -> any dispatch instance (queue group): a worker connected (WorkerOpenRequest)."""


def edge_agent(edge_id: str) -> str:
    """dispatch -> edge: ServerFrame messages for the worker connections this edge holds."""
    return f"{subjects.PREFIX}.edge.{edge_id}.agent"
