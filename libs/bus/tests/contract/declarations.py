"""RPCs declared for the contract suite (the shapes of the real table, on test subjects)."""

from __future__ import annotations

from livekit.protocol import models

from parley.bus import Rpc, Scope

ECHO: Rpc[models.Room, models.Room] = Rpc("Echo", models.Room, models.Room, "t.echo", "test")
SHARED: Rpc[models.Room, models.Room] = Rpc(
    "Shared", models.Room, models.Room, "parley.roomstate.ContractShared", "test", queue="q", shared=True
)
PER_NODE: Rpc[models.Room, models.Room] = Rpc(
    "PerNode", models.Room, models.Room, "t.node.{topic}.echo", "test", scope=Scope.NODE
)
GROUPED: Rpc[models.Room, models.Room] = Rpc(
    "Grouped", models.Room, models.Room, "t.grouped.{topic}", "test", scope=Scope.SERVICE, queue="{topic}"
)


def lost_once(name: str, *, idempotent: bool) -> Rpc[models.Room, models.Room]:
    """A shared room-state-like RPC; ``idempotent`` ones are asked again when unanswered."""
    return Rpc(
        name,
        models.Room,
        models.Room,
        f"parley.roomstate.{name}",
        "test",
        queue="room-state",
        shared=True,
        idempotent=idempotent,
    )
