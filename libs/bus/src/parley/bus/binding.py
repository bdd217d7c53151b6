"""A service's registration list: which declared RPCs it serves, with which handler.

``bind`` checks (for mypy) that a handler takes the RPC's request and returns its response;
``serve_all`` serves a list of bindings and refuses one that differs from the service's declared
``SERVES`` tuple, so that tuple (imported by the one-server test) is what the service really serves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from parley.bus.contract import Req, Resp, Rpc, Scope
from parley.bus.interfaces import Subscription


class _Serves(Protocol):
    async def serve(
        self,
        rpc: Rpc[Req, Resp],
        handler: Callable[[Req], Awaitable[Resp]],
        *,
        topic: str = "",
        concurrent: bool = True,
    ) -> Subscription: ...


@dataclass(frozen=True, slots=True)
class Binding:
    rpc: Rpc[Any, Any]
    handler: Callable[[Any], Awaitable[Any]]


def bind(rpc: Rpc[Req, Resp], handler: Callable[[Req], Awaitable[Resp]]) -> Binding:
    """Pair an RPC with its handler (typed: request and response must match the declaration)."""
    return Binding(rpc, handler)


def check_served(declared: Sequence[Rpc[Any, Any]], bindings: Sequence[Binding]) -> None:
    """Refuse bindings that are not exactly the declared RPCs."""
    served = [b.rpc.name for b in bindings]
    expected = [rpc.name for rpc in declared]
    if sorted(served) != sorted(expected) or len(set(served)) != len(served):
        raise ValueError(f"served RPCs {served} differ from the declared {expected}")


async def serve_all(
    bus: _Serves,
    declared: Sequence[Rpc[Any, Any]],
    bindings: Sequence[Binding],
    *,
    topic: str = "",
    concurrent: bool = True,
) -> list[Subscription]:
    """Serve every binding (``topic`` for the scoped ones); returns the subscriptions."""
    check_served(declared, bindings)
    subs: list[Subscription] = []
    for b in bindings:
        subs.append(
            await bus.serve(
                b.rpc, b.handler, topic=topic if b.rpc.scope is not Scope.NONE else "", concurrent=concurrent
            )
        )
    return subs
