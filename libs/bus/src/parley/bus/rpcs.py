"""Every RPC on the bus, declared once: name, request -> response, subject, queue group, server.

Callers use ``bus.call(rpcs.JOIN_ROOM, request, timeout=...)``; the server registers its handler
with ``bus.serve(rpcs.JOIN_ROOM, handler)``. Subjects come from ``subjects`` (the one place that
derives them), so the wire is what it was when callers passed subject strings.

``python -m parley.bus.contracts_doc`` prints the Contracts table of AGENTS.md from these.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from livekit.protocol import agent_dispatch as lk_dispatch
from livekit.protocol import egress as lk_egress
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.bus import subjects
from parley.bus.contract import TOPIC, Req, Resp, Rpc, Scope
from parley.protocol.gen.dispatch.v1 import dispatch_pb2 as dispatch
from parley.protocol.gen.egress.v1 import egress_pb2 as eg
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.protocol.gen.sfu.v1 import node_pb2 as node
from parley.protocol.gen.signal.v1 import relay_pb2 as relay
from parley.protocol.gen.turn.v1 import turn_pb2 as turn

ROOM_STATE = "room-state"
SFU = "sfu"
SIGNALING = "signaling"
DISPATCH = "dispatch"
TURN_ALLOC = "turn-alloc"
EGRESS = "egress"
"""``services/egress``: the egress controller, the EgressInfo records' one writer (issue 17; design in
``services/egress/README.md``)."""
EGRESS_WORKER = "egress-worker"
"""``services/egress-worker``: runs the jobs the controller places (track egress from the SFU's RTP
taps, issue 17 work package 2)."""
RUNTIME = "runtime"
"""``libs/runtime``: every service, through ``run_service``."""
TESTS = "tests"
"""Only tests call it (methods the SFU no longer calls since ``Report`` carries them)."""


def _room_state(
    name: str,
    request: type[Req],
    response: type[Resp],
    doc: str = "",
    *,
    callers: tuple[str, ...],
    idempotent: bool = False,
) -> Rpc[Req, Resp]:
    """A room-state method, served by any instance (queue group ``room-state``)."""
    return Rpc(
        name,
        request,
        response,
        subjects.room_state_rpc(name),
        ROOM_STATE,
        callers=callers,
        queue=subjects.ROOM_STATE_QUEUE,
        shared=True,
        idempotent=idempotent,
        doc=doc,
    )


def _dispatch(
    name: str, request: type[Req], response: type[Resp], doc: str = "", *, callers: tuple[str, ...]
) -> Rpc[Req, Resp]:
    """A dispatch method served by any instance (queue group ``dispatch``)."""
    return Rpc(
        name,
        request,
        response,
        subjects.dispatch_rpc(name),
        DISPATCH,
        callers=callers,
        queue=subjects.DISPATCH_QUEUE,
        shared=True,
        doc=doc,
    )


def _sfu(
    name: str,
    pattern: str,
    request: type[Req],
    response: type[Resp],
    doc: str = "",
    *,
    callers: tuple[str, ...],
) -> Rpc[Req, Resp]:
    """A method of one SFU node (its own subject: no queue group, gone with the node)."""
    return Rpc(name, request, response, pattern, SFU, callers=callers, scope=Scope.NODE, doc=doc)


# room-state: internal methods ------------------------------------------------------------------
JOIN_ROOM: Rpc[rs.JoinRoomRequest, rs.JoinRoomResponse] = _room_state(
    "JoinRoom",
    rs.JoinRoomRequest,
    rs.JoinRoomResponse,
    "admit a participant; names the hosting node",
    callers=(SIGNALING,),
    # room-state recognises a repeat by the request's edge and connection ids (the same participant)
    idempotent=True,
)
LOCATE_PARTICIPANT: Rpc[rs.LocateParticipantRequest, rs.LocateParticipantResponse] = _room_state(
    "LocateParticipant",
    rs.LocateParticipantRequest,
    rs.LocateParticipantResponse,
    "resume: the node of a session",
    callers=(SIGNALING,),
    idempotent=True,
)
MOVE_ROOMS: Rpc[rs.MoveRoomsRequest, rs.MoveRoomsResponse] = _room_state(
    "MoveRooms",
    rs.MoveRoomsRequest,
    rs.MoveRoomsResponse,
    "a draining node's rooms placed again",
    callers=(SFU,),
)
REPORT: Rpc[rs.SfuReport, rs.ReconcileResult] = _room_state(
    "Report",
    rs.SfuReport,
    rs.ReconcileResult,
    "SFU state reports, applied once per (reporter, seq)",
    callers=(SFU,),
)
PARTICIPANT_ACTIVE: Rpc[rs.ParticipantActiveRequest, rs.Ack] = _room_state(
    "ParticipantActive", rs.ParticipantActiveRequest, rs.Ack, "legacy unsequenced report", callers=(TESTS,)
)
PARTICIPANT_LEFT: Rpc[rs.ParticipantLeftRequest, rs.Ack] = _room_state(
    "ParticipantLeft", rs.ParticipantLeftRequest, rs.Ack, "legacy unsequenced report", callers=(TESTS,)
)
TRACK_PUBLISHED: Rpc[rs.TrackPublishedRequest, rs.Ack] = _room_state(
    "TrackPublished", rs.TrackPublishedRequest, rs.Ack, "legacy unsequenced report", callers=(TESTS,)
)
TRACK_UNPUBLISHED: Rpc[rs.TrackUnpublishedRequest, rs.Ack] = _room_state(
    "TrackUnpublished", rs.TrackUnpublishedRequest, rs.Ack, "legacy unsequenced report", callers=(TESTS,)
)

# room-state: livekit.RoomService, with LiveKit's own messages ----------------------------------
CREATE_ROOM: Rpc[lk.CreateRoomRequest, models.Room] = _room_state(
    "CreateRoom", lk.CreateRoomRequest, models.Room, callers=(SIGNALING, DISPATCH), idempotent=True
)
LIST_ROOMS: Rpc[lk.ListRoomsRequest, lk.ListRoomsResponse] = _room_state(
    "ListRooms",
    lk.ListRoomsRequest,
    lk.ListRoomsResponse,
    "egress: a room's sid at StartEgress (an unknown room is not_found, as LiveKit)",
    callers=(SIGNALING, EGRESS),
    idempotent=True,
)
DELETE_ROOM: Rpc[lk.DeleteRoomRequest, lk.DeleteRoomResponse] = _room_state(
    "DeleteRoom", lk.DeleteRoomRequest, lk.DeleteRoomResponse, callers=(SIGNALING,)
)
LIST_PARTICIPANTS: Rpc[lk.ListParticipantsRequest, lk.ListParticipantsResponse] = _room_state(
    "ListParticipants",
    lk.ListParticipantsRequest,
    lk.ListParticipantsResponse,
    callers=(SIGNALING,),
    idempotent=True,
)
GET_PARTICIPANT: Rpc[lk.RoomParticipantIdentity, models.ParticipantInfo] = _room_state(
    "GetParticipant",
    lk.RoomParticipantIdentity,
    models.ParticipantInfo,
    callers=(SIGNALING,),
    idempotent=True,
)
REMOVE_PARTICIPANT: Rpc[lk.RoomParticipantIdentity, lk.RemoveParticipantResponse] = _room_state(
    "RemoveParticipant", lk.RoomParticipantIdentity, lk.RemoveParticipantResponse, callers=(SIGNALING,)
)
MUTE_PUBLISHED_TRACK: Rpc[lk.MuteRoomTrackRequest, lk.MuteRoomTrackResponse] = _room_state(
    "MutePublishedTrack", lk.MuteRoomTrackRequest, lk.MuteRoomTrackResponse, callers=(SIGNALING,)
)
UPDATE_PARTICIPANT: Rpc[lk.UpdateParticipantRequest, models.ParticipantInfo] = _room_state(
    "UpdateParticipant",
    lk.UpdateParticipantRequest,
    models.ParticipantInfo,
    "egress: UpdateLayout sets the recorder's metadata",
    callers=(SIGNALING, EGRESS),
)
UPDATE_SUBSCRIPTIONS: Rpc[lk.UpdateSubscriptionsRequest, lk.UpdateSubscriptionsResponse] = _room_state(
    "UpdateSubscriptions", lk.UpdateSubscriptionsRequest, lk.UpdateSubscriptionsResponse, callers=(SIGNALING,)
)
SEND_DATA: Rpc[lk.SendDataRequest, lk.SendDataResponse] = _room_state(
    "SendData", lk.SendDataRequest, lk.SendDataResponse, callers=(SIGNALING,)
)
UPDATE_ROOM_METADATA: Rpc[lk.UpdateRoomMetadataRequest, models.Room] = _room_state(
    "UpdateRoomMetadata", lk.UpdateRoomMetadataRequest, models.Room, callers=(SIGNALING,)
)
PERFORM_RPC: Rpc[lk.PerformRpcRequest, lk.PerformRpcResponse] = _room_state(
    "PerformRpc",
    lk.PerformRpcRequest,
    lk.PerformRpcResponse,
    "forwarded to the hosting node",
    callers=(SIGNALING,),
)
TAP_TRACK: Rpc[node.TapRequest, node.TapResponse] = _room_state(
    "TapTrack",
    node.TapRequest,
    node.TapResponse,
    "egress: a plain-RTP copy of a track, forwarded to the hosting node as RoomCommand.tap",
    callers=(EGRESS_WORKER,),
)

# sfu: one node's subjects ----------------------------------------------------------------------
SESSION_START: Rpc[relay.StartSessionRequest, relay.StartSessionResponse] = _sfu(
    "SessionStart",
    subjects.sfu_session_start(TOPIC),
    relay.StartSessionRequest,
    relay.StartSessionResponse,
    "start a joined participant's session",
    callers=(SIGNALING,),
)
SESSION_RESUME: Rpc[relay.ResumeSessionRequest, relay.ResumeSessionResponse] = _sfu(
    "SessionResume",
    subjects.sfu_session_resume(TOPIC),
    relay.ResumeSessionRequest,
    relay.ResumeSessionResponse,
    "a reconnecting client rebinds its session",
    callers=(SIGNALING,),
)
ROOM_COMMAND: Rpc[node.RoomCommand, node.RoomCommandResult] = _sfu(
    "RoomCommand",
    subjects.sfu_command(TOPIC),
    node.RoomCommand,
    node.RoomCommandResult,
    "room-state acts on live sessions",
    callers=(ROOM_STATE,),
)
NODE_SESSIONS: Rpc[rs.NodeSessions, rs.NodeSessions] = _sfu(
    "NodeSessions",
    subjects.sfu_sessions(TOPIC),
    rs.NodeSessions,
    rs.NodeSessions,
    "the sessions a node holds; no responders = the node is gone",
    callers=(ROOM_STATE,),
)

# turn-alloc ------------------------------------------------------------------------------------
ICE_SERVERS: Rpc[turn.IceServersRequest, turn.IceServersResponse] = Rpc(
    "IceServers",
    turn.IceServersRequest,
    turn.IceServersResponse,
    subjects.turn_rpc("IceServers"),
    TURN_ALLOC,
    queue=subjects.TURN_ALLOC_QUEUE,
    shared=True,
    doc="TURN servers with REST credentials",
    callers=(SFU,),
)

# dispatch --------------------------------------------------------------------------------------
WORKER_OPEN: Rpc[dispatch.WorkerOpenRequest, dispatch.WorkerOpenResponse] = _dispatch(
    "WorkerOpen",
    dispatch.WorkerOpenRequest,
    dispatch.WorkerOpenResponse,
    "an agent worker connected",
    callers=(SIGNALING,),
)
WORKER_FRAME: Rpc[dispatch.WorkerFrame, dispatch.WorkerFrameAck] = Rpc(
    "WorkerFrame",
    dispatch.WorkerFrame,
    dispatch.WorkerFrameAck,
    subjects.dispatch_worker_frames(TOPIC),
    DISPATCH,
    scope=Scope.DISPATCH_INSTANCE,
    doc="a worker's frame to the instance owning its connection (owner_subject)",
    callers=(SIGNALING,),
)
OFFER_JOB: Rpc[dispatch.OfferJobRequest, dispatch.OfferJobResponse] = Rpc(
    "OfferJob",
    dispatch.OfferJobRequest,
    dispatch.OfferJobResponse,
    subjects.dispatch_job_offers(TOPIC),
    DISPATCH,
    scope=Scope.DISPATCH_INSTANCE,
    doc="a job offered to a worker another instance holds",
    callers=(DISPATCH,),
)
CREATE_DISPATCH: Rpc[lk_dispatch.CreateAgentDispatchRequest, lk_dispatch.AgentDispatch] = _dispatch(
    "CreateDispatch", lk_dispatch.CreateAgentDispatchRequest, lk_dispatch.AgentDispatch, callers=(SIGNALING,)
)
DELETE_DISPATCH: Rpc[lk_dispatch.DeleteAgentDispatchRequest, lk_dispatch.AgentDispatch] = _dispatch(
    "DeleteDispatch", lk_dispatch.DeleteAgentDispatchRequest, lk_dispatch.AgentDispatch, callers=(SIGNALING,)
)
LIST_DISPATCH: Rpc[lk_dispatch.ListAgentDispatchRequest, lk_dispatch.ListAgentDispatchResponse] = _dispatch(
    "ListDispatch",
    lk_dispatch.ListAgentDispatchRequest,
    lk_dispatch.ListAgentDispatchResponse,
    callers=(SIGNALING,),
)


# egress: livekit.Egress, with LiveKit's own messages --------------------------------------------
def _egress(
    name: str,
    request: type[Req],
    response: type[Resp],
    doc: str = "",
    *,
    callers: tuple[str, ...],
    idempotent: bool = False,
) -> Rpc[Req, Resp]:
    """An egress controller method, served by any instance (queue group ``egress``)."""
    return Rpc(
        name,
        request,
        response,
        subjects.egress_rpc(name),
        EGRESS,
        callers=callers,
        queue=subjects.EGRESS_QUEUE,
        shared=True,
        idempotent=idempotent,
        doc=doc,
    )


START_EGRESS = _egress(
    "StartEgress",
    lk_egress.StartEgressRequest,
    lk_egress.EgressInfo,
    "v2: source + outputs",
    callers=(SIGNALING,),
)
START_ROOM_COMPOSITE_EGRESS = _egress(
    "StartRoomCompositeEgress",
    lk_egress.RoomCompositeEgressRequest,
    lk_egress.EgressInfo,
    callers=(SIGNALING,),
)
START_WEB_EGRESS = _egress(
    "StartWebEgress", lk_egress.WebEgressRequest, lk_egress.EgressInfo, callers=(SIGNALING,)
)
START_PARTICIPANT_EGRESS = _egress(
    "StartParticipantEgress", lk_egress.ParticipantEgressRequest, lk_egress.EgressInfo, callers=(SIGNALING,)
)
START_TRACK_COMPOSITE_EGRESS = _egress(
    "StartTrackCompositeEgress",
    lk_egress.TrackCompositeEgressRequest,
    lk_egress.EgressInfo,
    callers=(SIGNALING,),
)
START_TRACK_EGRESS = _egress(
    "StartTrackEgress",
    lk_egress.TrackEgressRequest,
    lk_egress.EgressInfo,
    "no transcoding",
    callers=(SIGNALING,),
)
UPDATE_LAYOUT = _egress(
    "UpdateLayout",
    lk_egress.UpdateLayoutRequest,
    lk_egress.EgressInfo,
    "the recorder's metadata, through room-state's UpdateParticipant",
    callers=(SIGNALING,),
)
UPDATE_STREAM = _egress(
    "UpdateStream", lk_egress.UpdateStreamRequest, lk_egress.EgressInfo, callers=(SIGNALING,)
)
LIST_EGRESS = _egress(
    "ListEgress",
    lk_egress.ListEgressRequest,
    lk_egress.ListEgressResponse,
    callers=(SIGNALING,),
    idempotent=True,
)
STOP_EGRESS = _egress("StopEgress", lk_egress.StopEgressRequest, lk_egress.EgressInfo, callers=(SIGNALING,))
EGRESS_REPORT: Rpc[eg.EgressReport, eg.ReportAck] = Rpc(
    "EgressReport",
    eg.EgressReport,
    eg.ReportAck,
    subjects.egress_rpc("Report"),
    EGRESS,
    callers=(EGRESS_WORKER,),
    queue=subjects.EGRESS_QUEUE,
    shared=True,
    doc="a worker's status wish and result deltas for a job; the controller applies it",
)
OFFER_EGRESS: Rpc[eg.EgressJob, eg.OfferResult] = Rpc(
    "OfferEgress",
    eg.EgressJob,
    eg.OfferResult,
    subjects.egress_worker_offers(TOPIC),
    EGRESS_WORKER,
    scope=Scope.EGRESS_WORKER,
    doc="a job (part n) offered to the worker with the most free capacity; accepted or refused",
    callers=(EGRESS,),
)
EGRESS_JOB_CONTROL: Rpc[eg.JobControl, lk_egress.EgressInfo] = Rpc(
    "JobControl",
    eg.JobControl,
    lk_egress.EgressInfo,
    subjects.egress_worker_control(TOPIC),
    EGRESS_WORKER,
    scope=Scope.EGRESS_WORKER,
    doc="stop or update the streams of a job the worker holds",
    callers=(EGRESS,),
)

# every service ---------------------------------------------------------------------------------
PING: Rpc[Empty, Empty] = Rpc(
    "Ping",
    Empty,
    Empty,
    subjects.service_ping(TOPIC),
    RUNTIME,
    scope=Scope.SERVICE,
    queue=TOPIC,
    shared=True,
    doc="readiness: answered once started, refused while draining",
    callers=(SIGNALING,),
)

ALL: tuple[Rpc[Any, Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rpc))
"""Every declaration, in the order above."""
