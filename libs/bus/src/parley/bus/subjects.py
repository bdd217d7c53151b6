"""Every NATS subject Parley uses, derived only here.

Room names can hold any character, so subjects carry ``room_token(name)``, the
unpadded base64url of the UTF-8 name.
"""

from __future__ import annotations

import base64

PREFIX = "parley"

# JetStream: every room event, replayable by webhook and dispatch.
EVENTS_STREAM = "PARLEY_EVENTS"
EVENTS_ALL = f"{PREFIX}.events.>"
ROOM_EVENTS_ALL = f"{PREFIX}.events.room.>"
ROOM_EVENTS_EACH = f"{PREFIX}.events.room.*"
"""Every room's events with the room token as one wildcard (for subject transforms)."""

# Core NATS: SFU node heartbeats (NodeStats).
SFU_NODES = f"{PREFIX}.nodes.sfu"
NODE_LOST = f"{PREFIX}.nodes.lost"
"""NodeLost notices from room-state: edges tell that node's clients to reconnect."""

ROOM_STATE_QUEUE = "room-state"
SFU_QUEUE = "sfu"
TURN_ALLOC_QUEUE = "turn-alloc"


def room_token(room_name: str) -> str:
    return base64.urlsafe_b64encode(room_name.encode()).rstrip(b"=").decode() or "_"


def room_from_token(token: str) -> str:
    if token == "_":
        return ""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def room_events(room_name: str) -> str:
    """Where room-state (and dispatch, for agent jobs) publish a room's RoomEvents."""
    return f"{PREFIX}.events.room.{room_token(room_name)}"


def room_state_rpc(method: str) -> str:
    """A room-state method: the internal ones and LiveKit's RoomService ones alike."""
    return f"{PREFIX}.roomstate.{method}"


def sfu_session_start(node_id: str) -> str:
    return f"{PREFIX}.sfu.{node_id}.session.start"


def sfu_session_resume(node_id: str) -> str:
    """ResumeSessionRequest: a client reconnecting to its session on that node."""
    return f"{PREFIX}.sfu.{node_id}.session.resume"


def sfu_signal(node_id: str) -> str:
    """ClientSignal frames for sessions on that node."""
    return f"{PREFIX}.sfu.{node_id}.signal"


def sfu_sessions(node_id: str) -> str:
    """Request the sessions that node holds (NodeSessions); no responders = the node is gone."""
    return f"{PREFIX}.sfu.{node_id}.sessions"


def sfu_command(node_id: str) -> str:
    """RoomCommand requests for rooms on that node."""
    return f"{PREFIX}.sfu.{node_id}.command"


def edge_signal(edge_id: str) -> str:
    """ServerSignal frames for connections held by that edge."""
    return f"{PREFIX}.edge.{edge_id}.signal"


def edge_control(edge_id: str) -> str:
    """Requests to one edge (e.g. close a connection)."""
    return f"{PREFIX}.edge.{edge_id}.control"


def service_ping(service: str) -> str:
    """Every service answers ``google.protobuf.Empty`` here (queue group = the service name) once
    started and while not draining: how the edge learns that room-state, dispatch... are up."""
    return f"{PREFIX}.ping.{service}"


def shared_responder(subject: str) -> bool:
    """Whether interchangeable instances serve ``subject`` in a queue group, so that a responder
    missing now (one restarting) may appear: room-state, turn-alloc, dispatch (not one instance's
    subjects), pings. Subjects of one node, edge or dispatch instance die with it."""
    if subject.startswith((f"{PREFIX}.dispatch.instance.", f"{PREFIX}.egress.worker.")):
        return False
    return subject.startswith(
        (
            f"{PREFIX}.roomstate.",
            f"{PREFIX}.turn.",
            f"{PREFIX}.dispatch.",
            f"{PREFIX}.egress.",
            f"{PREFIX}.ping.",
        )
    )


def turn_rpc(method: str) -> str:
    """turn-alloc methods (IceServers)."""
    return f"{PREFIX}.turn.{method}"


def dispatch_rpc(method: str) -> str:
    """dispatch methods (AgentDispatchService and internal ones)."""
    return f"{PREFIX}.dispatch.{method}"


DISPATCH_WORKER_OPEN = dispatch_rpc("WorkerOpen")
"""edge -> any dispatch instance (queue group): a worker connected (WorkerOpenRequest)."""


def dispatch_worker_frames(instance: str) -> str:
    """edge -> the dispatch instance owning a worker connection: WorkerFrame."""
    return dispatch_rpc(f"instance.{instance}.frame")


def dispatch_job_offers(instance: str) -> str:
    """any dispatch instance -> the instance owning a worker: OfferJobRequest."""
    return dispatch_rpc(f"instance.{instance}.offer")


# webhook: PARLEY_WEBHOOK sources PARLEY_EVENTS, partitioned by room (parley.webhook.<p>.<token>).
WEBHOOK_STREAM = "PARLEY_WEBHOOK"
WEBHOOK_LEASES = "PARLEY_WEBHOOK_LEASES"
WEBHOOK_PREFIX = f"{PREFIX}.webhook"


def webhook_partition(partition: int) -> str:
    """Every room's events of one webhook partition."""
    return f"{WEBHOOK_PREFIX}.{partition}.*"


DISPATCH_QUEUE = "dispatch"

EGRESS_QUEUE = "egress"


def egress_rpc(method: str) -> str:
    """egress controller methods (livekit.Egress and Report; design in services/egress/README.md).
    One worker's own subjects are ``parley.egress.worker.<id>.*`` (not shared: they die with it)."""
    return f"{PREFIX}.egress.{method}"


EGRESS_WORKERS = f"{PREFIX}.egress.workers"
"""Every egress worker's WorkerStats heartbeat (each controller keeps them all)."""


def egress_worker_offers(worker: str) -> str:
    """controller -> one egress worker: EgressJob offers."""
    return f"{PREFIX}.egress.worker.{worker}.offer"


def egress_worker_control(worker: str) -> str:
    """controller -> the egress worker holding a job: JobControl (stop, update stream)."""
    return f"{PREFIX}.egress.worker.{worker}.control"


def edge_agent(edge_id: str) -> str:
    """ServerFrame messages for the agent worker connections that edge holds."""
    return f"{PREFIX}.edge.{edge_id}.agent"
