"""What one bus contract is: an RPC (request -> response on a subject) or a topic (one-way messages).

A declaration names the subject once, with the place its topic parameter goes (a node id, an edge
id, a dispatch instance id, a service name, or nothing), so a caller and a server cannot disagree on
the subject, the queue group or the message types. The table of declarations is ``rpcs.py`` and
``topics.py``; ``Bus.call``/``Bus.serve`` take them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from google.protobuf.message import Message

TOPIC = "{topic}"
"""Where the topic parameter goes in a subject or queue pattern."""

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
Msg = TypeVar("Msg", bound=Message)


class Scope(StrEnum):
    """What fills ``{topic}`` in a subject: whose subject it is."""

    NONE = "none"
    NODE = "node id"
    EDGE = "edge id"
    DISPATCH_INSTANCE = "dispatch instance id"
    SERVICE = "service name"
    ROOM = "room token"
    EGRESS_WORKER = "egress worker id"


_NOT_IN_TOPIC = frozenset(".*> \t\r\n")


def _fill(pattern: str, scope: Scope, topic: str, name: str) -> str:
    if scope is Scope.NONE:
        if topic:
            raise ValueError(f"{name} takes no topic (got {topic!r})")
        return pattern
    if not topic:
        raise ValueError(f"{name} needs a topic: the {scope}")
    if any(c in topic for c in _NOT_IN_TOPIC):
        # a "*" or ">" would serve or call every node's subject; a "." or space shifts the tokens
        raise ValueError(f"{name}: topic {topic!r} holds a subject separator or wildcard")
    return pattern.replace(TOPIC, topic)


@dataclass(frozen=True, slots=True)
class Rpc(Generic[Req, Resp]):
    """One request/response method on the bus, declared once for its callers and its server."""

    name: str
    request: type[Req]
    response: type[Resp]
    pattern: str
    """The subject, with ``{topic}`` where the topic goes when ``scope`` is not NONE."""
    server: str
    """The service that serves it (exactly one in the tree; see the one-server test)."""
    callers: tuple[str, ...] = ()
    """Who calls it: services, ``tests`` for methods only tests still call. Never empty in the tree:
    the contract tests refuse an RPC nothing calls (remove it instead)."""
    scope: Scope = Scope.NONE
    queue: str = ""
    """Queue group pattern ("" = one instance's own subject); may use ``{topic}``."""
    shared: bool = False
    """Interchangeable instances serve it, so a missing responder may come back (a restart):
    ``call`` keeps retrying it for the bus's ``responder_wait`` (``subjects.shared_responder``)."""
    idempotent: bool = False
    """Asking twice is harmless (a read; a create that returns what exists). A shared idempotent
    call that gets no answer within the bus's ``idempotent_attempt`` is asked again, to any live
    instance, until its timeout: a request taken by an instance that died mid-way is not lost."""
    doc: str = ""

    def subject(self, topic: str = "") -> str:
        """The subject for ``topic`` (required exactly when the RPC has a scope)."""
        return _fill(self.pattern, self.scope, topic, self.name)

    def queue_group(self, topic: str = "") -> str:
        return _fill(self.queue, self.scope, topic, self.name) if TOPIC in self.queue else self.queue

    def topic_of(self, subject: str) -> str:
        """The topic a subject of this RPC carries (e.g. an ``owner_subject`` from the wire)."""
        head, _, tail = self.pattern.partition(TOPIC)
        match = re.fullmatch(re.escape(head) + r"([^.*>\s]+)" + re.escape(tail), subject)
        if self.scope is Scope.NONE or match is None:
            raise ValueError(f"{subject!r} is not a subject of {self.name}")
        return match.group(1)


@dataclass(frozen=True, slots=True)
class Topic(Generic[Msg]):
    """One-way messages (signals, events, heartbeats) of one type on a subject."""

    name: str
    message: type[Msg]
    pattern: str
    publisher: str
    subscriber: str
    scope: Scope = Scope.NONE
    doc: str = ""

    def subject(self, topic: str = "") -> str:
        return _fill(self.pattern, self.scope, topic, self.name)
