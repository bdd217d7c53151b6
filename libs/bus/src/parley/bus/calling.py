"""How ``Bus.call`` uses a declaration, for every bus: which subject, how long to wait for a
responder to appear, and when to ask again.

- A shared RPC (queue group) nobody serves is retried for ``responder_wait``: an instance restarting.
- A shared idempotent RPC unanswered within ``idempotent_attempt`` is asked again until its
  timeout: the instance that took the request may have died mid-way, and NATS never tells.
- Anything else is asked once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from parley.bus.contract import Req, Resp, Rpc
from parley.bus.errors import NoResponders, RpcTimeout
from parley.observability import get_logger

log = get_logger("parley.bus")

RESPONDER_RETRY_MIN = 0.05
RESPONDER_RETRY_MAX = 0.5
"""Pauses (doubling) between attempts while waiting for a responder to appear."""
IDEMPOTENT_ATTEMPT = 3.0
"""Seconds an idempotent shared call waits for an answer before asking again (``Rpc.idempotent``)."""


async def until_responder(subject: str, wait: float, once: Callable[[], Awaitable[Resp]]) -> Resp:
    """``once()`` (one request), asked again with doubling pauses while it raises NoResponders,
    for up to ``wait`` seconds: a responder restarting may appear meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = RESPONDER_RETRY_MIN
    while True:
        try:
            return await once()
        except NoResponders:
            left = deadline - loop.time()
            if left <= 0:
                raise
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, RESPONDER_RETRY_MAX)


async def call(
    rpc: Rpc[Req, Resp],
    request: Req,
    *,
    topic: str,
    timeout: float,
    wait: float,
    attempt: float,
    ask: Callable[[str, bytes, float, float], Awaitable[Resp]],
) -> Resp:
    """Run one ``Bus.call``: ``ask(subject, data, timeout, responder_wait)`` once, or again after
    each ``attempt`` seconds unanswered for a shared idempotent RPC."""
    subject = rpc.subject(topic)
    data = request.SerializeToString()
    if not (rpc.shared and rpc.idempotent):
        return await ask(subject, data, timeout, wait if rpc.shared else 0.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        this_try = min(attempt, deadline - loop.time())
        try:
            return await ask(subject, data, this_try, wait)
        except RpcTimeout as exc:
            if deadline - loop.time() <= 0:
                raise RpcTimeout(f"no answer on {subject} within {timeout}s") from exc
            log.info("no answer; asking again", subject=subject, after=round(this_try, 2))
