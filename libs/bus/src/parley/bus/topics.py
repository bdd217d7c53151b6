"""Every one-way message flow on the bus, declared once (documentation and subjects; publishers
and subscribers still pass ``subjects`` strings, which these patterns are built from)."""

from __future__ import annotations

from typing import Any

from parley.bus import subjects
from parley.bus.contract import TOPIC, Scope, Topic
from parley.bus.rpcs import DISPATCH, EGRESS, EGRESS_WORKER, ROOM_STATE, SFU, SIGNALING
from parley.protocol.gen.dispatch.v1 import dispatch_pb2 as dispatch
from parley.protocol.gen.egress.v1 import egress_pb2 as eg
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.protocol.gen.sfu.v1 import node_pb2 as node
from parley.protocol.gen.signal.v1 import relay_pb2 as relay

WEBHOOK = "webhook"

CLIENT_SIGNAL: Topic[relay.ClientSignal] = Topic(
    "ClientSignal", relay.ClientSignal, subjects.sfu_signal(TOPIC), SIGNALING, SFU, Scope.NODE
)
SERVER_SIGNAL: Topic[relay.ServerSignal] = Topic(
    "ServerSignal",
    relay.ServerSignal,
    subjects.edge_signal(TOPIC),
    SFU,
    SIGNALING,
    Scope.EDGE,
    "also probed with a request by the SFU's edge_watch: no responders = the edge is gone",
)
AGENT_FRAME: Topic[dispatch.ServerFrame] = Topic(
    "ServerFrame", dispatch.ServerFrame, subjects.edge_agent(TOPIC), DISPATCH, SIGNALING, Scope.EDGE
)
NODE_STATS: Topic[node.NodeStats] = Topic(
    "NodeStats", node.NodeStats, subjects.SFU_NODES, SFU, f"{ROOM_STATE}, {SIGNALING}"
)
NODE_LOST: Topic[node.NodeLost] = Topic("NodeLost", node.NodeLost, subjects.NODE_LOST, ROOM_STATE, SIGNALING)
ROOM_EVENTS: Topic[rs.RoomEvent] = Topic(
    "RoomEvent",
    rs.RoomEvent,
    subjects.ROOM_EVENTS_EACH.replace("*", TOPIC),
    f"{ROOM_STATE}, {DISPATCH}, {EGRESS}",
    f"{DISPATCH}, {WEBHOOK}",
    Scope.ROOM,
    "JetStream PARLEY_EVENTS, Nats-Msg-Id = event id",
)

EGRESS_WORKER_STATS: Topic[eg.WorkerStats] = Topic(
    "EgressWorkerStats",
    eg.WorkerStats,
    subjects.EGRESS_WORKERS,
    EGRESS_WORKER,
    EGRESS,
    doc="every 1 s: capacity, load, the jobs held (their leases renewed)",
)

ALL: tuple[Topic[Any], ...] = (
    CLIENT_SIGNAL,
    SERVER_SIGNAL,
    AGENT_FRAME,
    NODE_STATS,
    NODE_LOST,
    ROOM_EVENTS,
    EGRESS_WORKER_STATS,
)
