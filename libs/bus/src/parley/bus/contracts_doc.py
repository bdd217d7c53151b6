"""The Contracts table of AGENTS.md, rendered from the declarations (``rpcs.py``, ``topics.py``).

``python -m parley.bus.contracts_doc`` prints it; a test checks AGENTS.md holds exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parley.bus import rpcs, topics
from parley.bus.contract import TOPIC, Rpc, Scope, Topic

BEGIN = "<!-- contracts:begin (generated: python -m parley.bus.contracts_doc) -->"
END = "<!-- contracts:end -->"

_PLACEHOLDER = {
    Scope.NONE: "",
    Scope.NODE: "<node>",
    Scope.EDGE: "<edge>",
    Scope.DISPATCH_INSTANCE: "<instance>",
    Scope.SERVICE: "<service>",
    Scope.ROOM: "<room_token>",
    Scope.EGRESS_WORKER: "<worker>",
}


def _subject(pattern: str, scope: Scope) -> str:
    return pattern.replace(TOPIC, _PLACEHOLDER[scope])


def _rpc_row(rpc: Rpc[Any, Any]) -> str:
    queue = rpc.queue.replace(TOPIC, _PLACEHOLDER[rpc.scope])
    where = f"`{_subject(rpc.pattern, rpc.scope)}`" + (f" (queue `{queue}`)" if queue else "")
    types = f"`{rpc.request.DESCRIPTOR.full_name}` → `{rpc.response.DESCRIPTOR.full_name}`"
    callers = ", ".join(rpc.callers) or "-"
    return f"| {rpc.name} | {where} | {types} | {rpc.server} | {callers} |"


def _topic_row(topic: Topic[Any]) -> str:
    subject = f"`{_subject(topic.pattern, topic.scope)}`"
    return f"| {topic.name} | {subject} | `{topic.message.DESCRIPTOR.full_name}` | {topic.publisher} | {topic.subscriber} |"


def markdown(rpcs: Sequence[Rpc[Any, Any]], topics: Sequence[Topic[Any]] = ()) -> str:
    """The section between the BEGIN and END markers, markers included."""
    lines = [
        BEGIN,
        "| RPC | subject | request → response | served by | called by |",
        "|---|---|---|---|---|",
        *(_rpc_row(rpc) for rpc in rpcs),
    ]
    if topics:
        lines += [
            "",
            "| topic | subject | message | published by | subscribed by |",
            "|---|---|---|---|---|",
            *(_topic_row(t) for t in topics),
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def render() -> str:
    """The section for the declarations in the tree."""
    return markdown(rpcs.ALL, topics.ALL)


if __name__ == "__main__":  # pragma: no cover - a developer's command
    print(render(), end="")
