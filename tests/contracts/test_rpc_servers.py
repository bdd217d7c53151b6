"""Every declared RPC has exactly one server in the tree and the callers it declares.

Servers come from the services' registration lists (the ``SERVES`` tuples that ``serve_all``
refuses to differ from what a service binds); callers from the source that names ``rpcs.<RPC>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import parley.dispatch.app
import parley.egress.app
import parley.egress_worker.worker
import parley.room_state.served
import parley.runtime.service
import parley.sfu.node
import parley.turn_alloc.app
from parley.bus import Rpc, rpcs, subjects

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

SERVERS: dict[str, tuple[Rpc[Any, Any], ...]] = {
    rpcs.ROOM_STATE: parley.room_state.served.SERVES,
    rpcs.SFU: parley.sfu.node.SERVES,
    rpcs.DISPATCH: parley.dispatch.app.SERVES,
    rpcs.TURN_ALLOC: parley.turn_alloc.app.SERVES,
    rpcs.EGRESS: parley.egress.app.SERVES,
    rpcs.EGRESS_WORKER: parley.egress_worker.worker.SERVES,
    rpcs.RUNTIME: parley.runtime.service.SERVES,
}

SOURCES: dict[str, Path] = {
    rpcs.ROOM_STATE: ROOT / "services/room-state/src",
    rpcs.SFU: ROOT / "services/sfu/src",
    rpcs.DISPATCH: ROOT / "services/dispatch/src",
    rpcs.TURN_ALLOC: ROOT / "services/turn-alloc/src",
    rpcs.EGRESS: ROOT / "services/egress/src",
    rpcs.EGRESS_WORKER: ROOT / "services/egress-worker/src",
    rpcs.SIGNALING: ROOT / "services/signaling/src",
    "webhook": ROOT / "services/webhook/src",
    rpcs.RUNTIME: ROOT / "libs/runtime/src",
    rpcs.TESTS: ROOT / "tests",
}

PLANNED: set[str] = set()
"""Declared ahead of their service: nothing serves or calls them yet. The change that serves one
adds its ``SERVES`` to ``SERVERS``, its source to ``SOURCES`` and removes it from here; from then on
the usual checks hold."""

NAMES = {id(value): name for name, value in vars(rpcs).items() if isinstance(value, Rpc)}


def _references() -> dict[str, set[str]]:
    """The ``rpcs.<NAME>`` each place's source mentions."""
    found: dict[str, set[str]] = {}
    for place, root in SOURCES.items():
        names: set[str] = set()
        for path in root.rglob("*.py"):
            names |= set(re.findall(r"\brpcs\.([A-Z][A-Z0-9_]*)\b", path.read_text()))
        found[place] = names
    return found


def test_the_table_is_every_rpc_declared() -> None:
    assert len(rpcs.ALL) == len(NAMES) == len({rpc.name for rpc in rpcs.ALL})
    assert {rpc.name for rpc in rpcs.ALL} >= PLANNED


@pytest.mark.parametrize("rpc", rpcs.ALL, ids=lambda r: r.name)
def test_exactly_one_server(rpc: Rpc[Any, Any]) -> None:
    servers = [service for service, served in SERVERS.items() if any(s is rpc for s in served)]
    assert servers == ([] if rpc.name in PLANNED else [rpc.server])


def test_servers_serve_only_declared_rpcs() -> None:
    for service, served in SERVERS.items():
        assert all(id(rpc) in NAMES for rpc in served), service
        assert len({rpc.name for rpc in served}) == len(served), f"{service} serves an RPC twice"


@pytest.mark.parametrize("rpc", rpcs.ALL, ids=lambda r: r.name)
def test_callers_are_the_declared_ones(rpc: Rpc[Any, Any]) -> None:
    assert rpc.callers, "nobody calls it: remove it, or declare its caller"
    name = NAMES[id(rpc)]
    places = {place for place, names in REFERENCES.items() if name in names}
    if rpc.server not in rpc.callers:
        places.discard(rpc.server)  # its registration names it too
    declared = set(rpc.callers)
    if rpcs.TESTS not in declared:
        places.discard(rpcs.TESTS)  # tests may call anything
    if rpc.name in PLANNED:
        assert places == set(), "planned: nothing serves it yet, so nothing may call it"
        return
    assert places == declared


@pytest.mark.parametrize("rpc", rpcs.ALL, ids=lambda r: r.name)
def test_shared_and_queue_agree_with_the_subject(rpc: Rpc[Any, Any]) -> None:
    """A queue group's RPC is shared (a missing responder may come back), one instance's is not,
    and ``subjects.shared_responder`` (used for raw requests) says the same."""
    subject = rpc.subject("X") if rpc.scope.value != "none" else rpc.subject()
    assert rpc.shared == subjects.shared_responder(subject) == bool(rpc.queue)
    assert rpc.subject("X" if rpc.scope.value != "none" else "").startswith(f"{subjects.PREFIX}.")


REFERENCES = _references()
