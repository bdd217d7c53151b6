"""AgentDispatch records: explicit (CreateDispatch, room config) and the automatic one."""

from __future__ import annotations

from collections.abc import Mapping

from livekit.protocol import agent_dispatch

from parley.dispatch.jobs import now_ns
from parley.protocol.ids import DISPATCH_PREFIX, new_id


def new_dispatch(
    room: str,
    agent_name: str = "",
    metadata: str = "",
    deployment: str = "",
    attributes: Mapping[str, str] | None = None,
    restart_policy: int = 0,
) -> agent_dispatch.AgentDispatch:
    d = agent_dispatch.AgentDispatch(
        id=new_id(DISPATCH_PREFIX),
        agent_name=agent_name,
        room=room,
        metadata=metadata,
        deployment=deployment,
        restart_policy=restart_policy,  # type: ignore[arg-type]
    )
    d.attributes.update(attributes or {})
    d.state.created_at = now_ns()
    return d
