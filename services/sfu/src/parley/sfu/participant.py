"""One participant's session on this node: its record, peer connections, tracks and channels.

Mutated only from the room's actor (and the synchronous data path, which touches only the
de-duplication state).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiortc import RTCDataChannel, RTCIceCandidate, RTCPeerConnection
from livekit.protocol import models, rtc

from parley.sfu.engine import PublishedMedia, SubscribedMedia
from parley.sfu.outbox import SignalOutbox

NONCE_MEMORY = 1024
PENDING_DATA = 256


@dataclass(slots=True)
class PublishedTrack:
    info: models.TrackInfo
    up: PublishedMedia | None = None
    """The media engine's UpTrack once the m-line is bound."""
    subscribed_once: bool = False


@dataclass(slots=True)
class Negotiation:
    """Server-offered (subscriber) PC state: one offer in flight at a time."""

    offer_id: int = 0
    awaiting_answer: bool = False
    needs_offer: bool = False


@dataclass(slots=True)
class SinglePcState:
    """/rtc/v1: the client offers, the server answers; downstream media rides the client's recvonly
    m-lines. Subscriptions wait in ``pending`` until a client offer has a free m-line for them."""

    pending: dict[str, tuple[Participant, PublishedTrack]] = field(default_factory=dict)
    """track sid -> (publisher Participant, track): wanted, not yet on an m-line."""
    receive_mids: dict[str, str] = field(default_factory=dict)
    """mid -> kind of every m-line the client's latest offer wants to receive on."""
    publish_mids: set[str] = field(default_factory=set)
    """m-lines that ever carried the client's own media: never reused for downstream."""
    retired_mids: set[str] = field(default_factory=set)
    """m-lines whose DownTrack closed and whose inactive answer is not sent yet (free again after it)."""
    answered: bool = False
    needs_offer: bool = False
    """Something changed that only a new client offer can carry."""
    awaiting_offer: bool = False
    """media_sections_requirement sent; the client's next offer answers it."""
    asked_at: float = 0.0
    """monotonic time of the last request (a request unanswered for long may be repeated)."""
    unsatisfied: int = 0
    """Requests in a row after which subscriptions still had no m-line (stop asking after a few)."""


class Participant:
    def __init__(
        self,
        *,
        info: models.ParticipantInfo,
        outbox: SignalOutbox,
        edge_id: str,
        auto_subscribe: bool,
        protocol: int,
        client_info: models.ClientInfo,
        single_pc: bool = False,
    ) -> None:
        self.info = info
        self.outbox = outbox
        self.edge_id = edge_id
        self.auto_subscribe = auto_subscribe
        self.protocol = protocol
        self.client_info = client_info
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.sub_channels: dict[str, RTCDataChannel] = {}
        self.pub_channels: dict[str, RTCDataChannel] = {}
        self.pending: dict[str, models.TrackInfo] = {}
        self.published: dict[str, PublishedTrack] = {}
        self.bound_mids: dict[str, str] = {}
        self.downtracks: dict[str, SubscribedMedia] = {}
        self.wanted: set[str] = set()
        self.unwanted: set[str] = set()
        self.track_settings: dict[str, rtc.UpdateTrackSettings] = {}
        """track sid -> the subscriber's latest adaptive-stream settings (``track_settings.py``)."""
        self.subscription_permission: rtc.SubscriptionPermission | None = None
        """As publisher: who may subscribe to its tracks (None: everyone; ``permissions.py``)."""
        self.candidates: dict[int, list[RTCIceCandidate]] = {0: [], 1: []}
        self.sub_negotiation = Negotiation()
        self.last_reliable_seq = 0
        self.refused_data = 0
        """Data packets dropped for lack of can_publish_data."""
        self.pending_data: dict[str, deque[bytes]] = {}
        self._nonces: deque[bytes] = deque(maxlen=NONCE_MEMORY)
        self._nonce_set: set[bytes] = set()
        self.active = False
        self.closed = False
        self.signal_lost_at: float | None = None
        """monotonic time its signalling connection closed without a leave (None while connected)."""
        self.resume_timer: asyncio.Task[None] | None = None
        """Removes the participant if it does not resume within ``sfu.resume_window``."""
        self.join_timer: asyncio.Task[None] | None = None
        """Removes the participant if it is not ACTIVE within ``sfu.join_timeout``."""
        self.single_pc = single_pc
        self.v1 = SinglePcState()
        self.subscriber_primary = protocol > 2 and self.permission.can_subscribe and not single_pc

    # -- identity and permissions ---------------------------------------------------------------
    @property
    def sid(self) -> str:
        return self.info.sid

    @property
    def identity(self) -> str:
        return self.info.identity

    @property
    def connection_id(self) -> str:
        return self.outbox.connection_id

    @property
    def permission(self) -> models.ParticipantPermission:
        return self.info.permission

    @property
    def hidden(self) -> bool:
        return self.info.permission.hidden

    @property
    def is_agent(self) -> bool:
        return self.info.kind == models.ParticipantInfo.Kind.AGENT or self.info.permission.agent

    # -- record ---------------------------------------------------------------------------------
    def bump(self, version: int = 0) -> None:
        """Give a change clients will see a version they take as new (they drop older ones).

        ``version``: the one room-state wrote for a RoomCommand's change (room-state owns the
        record); adopted when it is newer than what clients hold, else (the node's own changes
        raced ahead) the next version: clients always see a strictly higher one with new content
        (livekit-client takes an equal version, other SDKs may not). 0: a change of the node's own
        (media or signalling), reported to room-state as a delta: the next version, as
        room-state's record gets when it applies it.
        """
        self.info.version = max(self.info.version + 1, version)

    def sync_tracks(self) -> None:
        """ParticipantInfo.tracks mirrors the bound published tracks."""
        del self.info.tracks[:]
        self.info.tracks.extend(t.info for t in self.published.values() if t.up is not None)
        self.info.is_publisher = bool(self.info.tracks)

    # -- output ---------------------------------------------------------------------------------
    def send(self, response: rtc.SignalResponse) -> None:
        if not self.closed:
            self.outbox.send(response)

    def data_channel(self, label: str) -> RTCDataChannel | None:
        """Downstream data goes over the primary PC's channel of that kind."""
        channels = self.sub_channels if self.subscriber_primary else self.pub_channels
        return channels.get(label)

    def send_data(self, label: str, payload: bytes) -> bool:
        """Send now, or keep it (bounded) until the channel opens; False when dropped."""
        if self.closed:
            return False
        channel = self.data_channel(label)
        if channel is None or channel.readyState != "open":
            pending = self.pending_data.setdefault(label, deque(maxlen=PENDING_DATA))
            if len(pending) == pending.maxlen:
                return False
            pending.append(payload)
            return True
        try:
            channel.send(payload)
        except Exception:
            return False
        return True

    def flush_data(self) -> None:
        """A downstream channel opened: send what waited for it."""
        for label, pending in list(self.pending_data.items()):
            channel = self.data_channel(label)
            if channel is None or channel.readyState != "open":
                continue
            while pending:
                try:
                    channel.send(pending.popleft())
                except Exception:
                    pending.clear()

    # -- data de-duplication ----------------------------------------------------------------------
    def seen_nonce(self, nonce: bytes) -> bool:
        if nonce in self._nonce_set:
            return True
        if len(self._nonces) == self._nonces.maxlen:
            self._nonce_set.discard(self._nonces[0])
        self._nonces.append(nonce)
        self._nonce_set.add(nonce)
        return False
