"""Subjects of the worker relay (the dispatch side derives the same from subjects.dispatch_rpc)."""

from __future__ import annotations

from parley.bus import subjects

WORKER_OPEN = subjects.dispatch_rpc("WorkerOpen")
"""edge -> any dispatch instance (queue group): a worker connected (WorkerOpenRequest)."""

edge_agent = subjects.edge_agent
"""dispatch -> edge: ServerFrame messages for the worker connections this edge holds."""
