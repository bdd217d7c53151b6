"""The only module that touches aiortc/aioice private APIs (pinned: aiortc 1.16.0, aioice 0.13.0).

Everything here is checked by ``tests/media/test_aiortc_internals.py`` so that an upgrade that renames
or changes one of these internals fails loudly instead of silently breaking forwarding.

What is used, and why:
- ``RTCRtpReceiver._handle_rtp_packet`` / ``_handle_rtcp_packet`` / ``receive``: replaced per instance,
  so a published track's RTP goes to the SFU instead of the jitter buffer and decoder thread.
- ``RTCRtpReceiver._RTCRtpReceiver__rtcp_ssrc`` and friends: the SSRC our RTCP to the publisher uses.
- ``RTCRtpSender.send`` / ``_handle_rtcp_packet`` / ``_ssrc`` / ``_rtx_ssrc`` / ``_stream_id`` / ``_track_id``: a
  forwarding sender has no track and no encoder; its RTCP (NACK, PLI, RR) comes to the SFU.
- ``RTCDtlsTransport._state`` / ``_tx_srtp`` and aioice ``Connection._nominated``: a synchronous send
  path (SRTP protect + ``sendto``) so the per-packet path has no awaits.
- ``RtpRouter.route_rtp``: route unsignalled SSRCs (simulcast layers) by the MID header extension.
- ``aioice.ice.get_host_addresses`` and ``Connection.get_component_candidates``: loopback/node IP and
  binding every ICE UDP socket inside the configured port range.
- ``aiortc.codecs.CODECS`` / ``HEADER_EXTENSIONS``: what we negotiate (VP9/AV1 passthrough, rid/rrid,
  transport-wide-cc).
- ``aiortc.rtcpeerconnection.create_media_description_for_transceiver``: wrapped so that transport-wide-cc
  (the header extension and ``a=rtcp-fb:<pt> transport-cc``) stays only on m-lines where we only send
  (subscriber m-lines): a publisher that negotiated it would switch to send-side estimation and expect
  TWCC feedback, but publishers get our REMB (``publisher_feedback.py``).
- ``RTCDtlsTransport._handle_rtcp_data``: replaced per subscriber transport so TWCC feedback (RTPFB
  FMT=15, which aiortc would parse as a NACK) and REMB reach ``congestion.SubscriberCongestion``.
- ``RTCPeerConnection._RTCPeerConnection__isClosed``: whether ``close()`` has begun. aiortc closes a
  peer connection by itself when every DTLS transport got the remote's close_notify, and a
  ``setRemoteDescription`` in flight then sets the signalling state back from "closed": only this
  flag tells a negotiation that failed because the client left from one that failed on bad input.
- ``aiortc.rtcpeerconnection.find_common_codecs``: replaced so that an answer always uses the offer's
  payload types (aiortc keeps its own PT for offered PTs outside 96..127, and Chrome puts VP9 profiles
  and AV1 at 35..63: the answer then declared one PT twice and Chrome rejected it) and VP9/AV1
  profiles must match (aiortc matched VP9 profile 2 to our profile 0).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import socket
from collections.abc import Callable
from typing import Any

import aioice.ice
import aioice.turn
import aiortc.rtcpeerconnection
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import CODECS, HEADER_EXTENSIONS, is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter, State
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import AnyRtcpPacket, RtpPacket, is_rtcp

from parley.observability import TaskSet
from parley.sfu.media.errors import AiortcIncompatibleError

RtpHandler = Callable[[RtpPacket, int], None]
RtcpHandler = Callable[[AnyRtcpPacket], None]

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_RRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
TRANSPORT_CC = RTCRtcpFeedback(type="transport-cc")

_sends = TaskSet("parley.sfu.media.send")
_HOOKED = "_parley_hooked"


# ---------------------------------------------------------------------------------------------------
# process-wide patches (configure)


def set_host_addresses(addresses: list[str] | None) -> None:
    """Gather ICE host candidates only on ``addresses`` (None restores aioice's own discovery)."""
    original = getattr(aioice.ice, "_parley_original_get_host_addresses", None)
    if original is None:
        original = aioice.ice.get_host_addresses
        aioice.ice._parley_original_get_host_addresses = original  # type: ignore[attr-defined]
    if addresses is None:
        aioice.ice.get_host_addresses = original
        return
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


class PortAllocator:
    """Round-robin over ``start..end``; ``bind`` returns a UDP socket bound inside the range."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self._next = itertools.cycle(range(start, end + 1))

    def bind(self, address: str) -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for _ in range(self.end - self.start + 1):
            port = next(self._next)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            try:  # as aioice does for its own sockets: absorb bursts while the loop is busy
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, max(aioice.turn.UDP_SOCKET_BUFFER_SIZE, 1 << 20)
                )
            except OSError:
                pass
            return sock
        raise OSError(f"no free UDP port in {self.start}..{self.end} on {address}")


_ports: PortAllocator | None = None
_SCOPE = "_parley_network"


class NetworkScope:
    """One media context's ICE host sockets: its port allocator and host addresses (None: the
    process default that ``set_host_addresses`` patched into aioice)."""

    __slots__ = ("addresses", "ports")

    def __init__(self, ports: PortAllocator, addresses: list[str] | None) -> None:
        self.ports = ports
        self.addresses = addresses


def scope_peer_connection(pc: aiortc.RTCPeerConnection, scope: NetworkScope) -> None:
    """Gather ``pc``'s host candidates with ``scope`` (its port range and addresses) instead of the
    process default: every ICE connection of the peer connection is stamped before it gathers (in
    ``setLocalDescription``); ``inherit_scope`` carries the stamp to an ICE restart's connection."""
    original = pc.setLocalDescription

    async def set_local_description(description: Any = None) -> None:
        transports: set[Any] = getattr(pc, "_RTCPeerConnection__iceTransports")  # noqa: B009
        for transport in transports:
            setattr(transport.iceGatherer._connection, _SCOPE, scope)
        await original(description)

    setattr(pc, "setLocalDescription", set_local_description)  # noqa: B010


def inherit_scope(old: Any, new: Any) -> None:
    """A replacement aioice connection gathers like the one it replaces."""
    scope = getattr(old, _SCOPE, None)
    if scope is not None:
        setattr(new, _SCOPE, scope)


def set_port_range(start: int, end: int) -> None:
    """Bind every ICE host socket inside ``start..end`` (aioice binds port 0 by default)."""
    global _ports
    _ports = PortAllocator(start, end)
    connection_cls: Any = aioice.ice.Connection
    if not hasattr(connection_cls, "_parley_original_get_component_candidates"):
        connection_cls._parley_original_get_component_candidates = connection_cls.get_component_candidates
        connection_cls.get_component_candidates = _get_component_candidates


async def _get_component_candidates(
    self: Any, component: int, addresses: list[str], timeout: int = 5
) -> list[Candidate]:
    """aioice's host-candidate gathering with sockets from the port range (the connection's
    ``NetworkScope`` if it has one, else the process's); STUN/TURN as before."""
    scope: NetworkScope | None = getattr(self, _SCOPE, None)
    allocator = scope.ports if scope is not None else _ports
    if scope is not None and scope.addresses is not None and addresses:
        addresses = [
            a for a in scope.addresses if (":" in a and self._use_ipv6) or (":" not in a and self._use_ipv4)
        ]
    original = type(self)._parley_original_get_component_candidates
    if allocator is None:
        result: list[Candidate] = await original(self, component, addresses, timeout)
        return result
    loop = asyncio.get_running_loop()
    candidates: list[Candidate] = []
    host_protocols: list[Any] = []
    for address in addresses:
        try:
            sock = allocator.bind(address)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(self), sock=sock
            )
        except OSError:
            continue
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=port,
            type="host",
        )
        candidates.append(protocol.local_candidate)
        host_protocols.append(protocol)
    self._protocols += host_protocols
    if self.stun_server:
        for protocol in host_protocols:
            if ":" not in protocol.local_candidate.host:
                try:
                    cand, _ = await asyncio.wait_for(
                        aioice.ice.server_reflexive_candidate(protocol, self.stun_server), timeout
                    )
                    candidates.append(cand)
                except Exception:  # STUN failure only loses the srflx candidate
                    pass
    if self.turn_server:  # relayed candidates: aioice's own code with no host addresses
        candidates += await original(self, component, [], timeout)
    return candidates


def patch_rtp_router() -> None:
    """Route packets of unknown SSRCs by the MID header extension before aioice's PT fallback."""
    router_cls: Any = RtpRouter
    if getattr(router_cls, "_parley_patched", False):
        return
    router_cls._parley_original_route_rtp = router_cls.route_rtp
    router_cls.route_rtp = _route_rtp
    router_cls._parley_patched = True


def _route_rtp(self: Any, packet: RtpPacket) -> Any:
    ssrc_receiver = self.ssrc_table.get(packet.ssrc)
    pt_receivers = self.payload_type_table.get(packet.payload_type, ())
    if ssrc_receiver is not None:
        return ssrc_receiver if ssrc_receiver in pt_receivers else None
    mid = packet.extensions.mid
    if mid is not None:
        mid_receiver = self.mid_table.get(mid)
        if mid_receiver is not None and mid_receiver in pt_receivers:
            self.ssrc_table[packet.ssrc] = mid_receiver
            return mid_receiver
    if len(pt_receivers) == 1:
        receiver = next(iter(pt_receivers))
        self.ssrc_table[packet.ssrc] = receiver
        return receiver
    return None


_VIDEO_FEEDBACK = [
    RTCRtcpFeedback(type="nack"),
    RTCRtcpFeedback(type="nack", parameter="pli"),
    RTCRtcpFeedback(type="goog-remb"),
]


def extend_codecs() -> None:
    """Negotiate VP9 and AV1 (passthrough only), rid/rrid for simulcast; never RED."""
    video = CODECS["video"]
    names = {c.mimeType.lower() for c in video}
    used = {c.payloadType for kind in CODECS.values() for c in kind}
    free = (pt for pt in range(96, 128) if pt not in used)
    for mime, params in (("video/VP9", {"profile-id": "0"}), ("video/AV1", {})):
        if mime.lower() in names:
            continue
        pt, rtx_pt = next(free), next(free)
        video.append(
            RTCRtpCodecParameters(
                mimeType=mime,
                clockRate=90000,
                payloadType=pt,
                rtcpFeedback=list(_VIDEO_FEEDBACK),
                parameters=dict(params),
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=rtx_pt, parameters={"apt": pt}
            )
        )
    for kind in ("audio", "video"):
        CODECS[kind][:] = [c for c in CODECS[kind] if c.mimeType.lower() != f"{kind}/red"]
    video_ext = HEADER_EXTENSIONS["video"]
    uris = {e.uri for e in video_ext}
    next_id = max(e.id for e in video_ext) + 1
    for uri in (URI_RID, URI_RRID):
        if uri not in uris:
            video_ext.append(RTCRtpHeaderExtensionParameters(id=next_id, uri=uri))
            next_id += 1
    _extend_transport_cc()


def _extend_transport_cc() -> None:
    """transport-wide-cc for every kind, one id unused by any kind (BUNDLE shares the id space), and
    ``transport-cc`` feedback for every codec; :func:`patch_codec_negotiation` keeps both only on
    m-lines where we only send."""
    if not any(e.uri == URI_TWCC for kind in HEADER_EXTENSIONS.values() for e in kind):
        twcc_id = max(e.id for kind in HEADER_EXTENSIONS.values() for e in kind) + 1
        for kind in ("audio", "video"):
            HEADER_EXTENSIONS[kind].append(RTCRtpHeaderExtensionParameters(id=twcc_id, uri=URI_TWCC))
    for kind in ("audio", "video"):
        for codec in CODECS[kind]:
            if not is_rtx(codec) and TRANSPORT_CC not in codec.rtcpFeedback:
                codec.rtcpFeedback.append(TRANSPORT_CC)


def _profile(codec: RTCRtpCodecParameters) -> str:
    mime = codec.mimeType.lower()
    if mime == "video/vp9":
        return str(codec.parameters.get("profile-id", "0"))
    if mime == "video/av1":
        return str(codec.parameters.get("profile", "0"))
    return ""


def codecs_compatible(local: RTCRtpCodecParameters, remote: RTCRtpCodecParameters) -> bool:
    """aiortc's check (mime, clock rate, H264 profile and packetization) plus VP9/AV1 profiles."""
    return is_codec_compatible(local, remote) and _profile(local) == _profile(remote)


def find_common_codecs(
    local_codecs: list[RTCRtpCodecParameters], remote_codecs: list[RTCRtpCodecParameters]
) -> list[RTCRtpCodecParameters]:
    """The remote's codecs we support, in the remote's order, each with the remote's payload type
    (RFC 3264 §6.1: the answer uses the offer's numbers); RTX only for an accepted base codec."""
    common: list[RTCRtpCodecParameters] = []
    accepted: dict[int, RTCRtpCodecParameters] = {}
    for remote in remote_codecs:
        if remote.payloadType is None or remote.payloadType in accepted:
            continue
        if is_rtx(remote):
            base = accepted.get(remote.parameters.get("apt"))  # type: ignore[arg-type]
            if base is not None and base.clockRate == remote.clockRate and not is_rtx(base):
                common.append(copy.deepcopy(remote))
                accepted[remote.payloadType] = remote
            continue
        local = next((c for c in local_codecs if codecs_compatible(c, remote)), None)
        if local is None:
            continue
        codec = copy.deepcopy(local)
        codec.payloadType = remote.payloadType
        codec.rtcpFeedback = [fb for fb in codec.rtcpFeedback if fb in remote.rtcpFeedback]
        common.append(codec)
        accepted[remote.payloadType] = codec
    return common


def patch_codec_negotiation() -> None:
    """Use :func:`find_common_codecs` for every offer and answer aiortc applies, and
    :func:`create_media_description` for every m-line it writes."""
    module: Any = aiortc.rtcpeerconnection
    if getattr(module, "_parley_original_find_common_codecs", None) is None:
        module._parley_original_find_common_codecs = module.find_common_codecs
    module.find_common_codecs = find_common_codecs
    if getattr(module, "_parley_original_create_media_description", None) is None:
        module._parley_original_create_media_description = module.create_media_description_for_transceiver
        module.create_media_description_for_transceiver = create_media_description


def create_media_description(transceiver: RTCRtpTransceiver, cname: str, direction: str, mid: str) -> Any:
    """aiortc's m-line writer, after dropping transport-wide-cc from a transceiver that does not only
    send (``direction`` is the offered or answered one). The transceiver's own lists change too: they
    are the parameters its sender/receiver get."""
    if direction != "sendonly":
        strip_transport_cc(transceiver)
    original: Any = aiortc.rtcpeerconnection._parley_original_create_media_description  # type: ignore[attr-defined]
    return original(transceiver, cname, direction, mid)


def strip_transport_cc(transceiver: RTCRtpTransceiver) -> None:
    t: Any = transceiver
    t._headerExtensions = [e for e in t._headerExtensions if e.uri != URI_TWCC]
    codecs: list[RTCRtpCodecParameters] = []
    for codec in t._codecs:
        if TRANSPORT_CC in codec.rtcpFeedback:
            codec = copy.copy(codec)  # may be an entry of CODECS itself (offers)
            codec.rtcpFeedback = [fb for fb in codec.rtcpFeedback if fb != TRANSPORT_CC]
        codecs.append(codec)
    t._codecs = codecs


# ---------------------------------------------------------------------------------------------------
# receivers (published tracks)


def hook_receiver(
    receiver: RTCRtpReceiver,
    *,
    on_rtp: RtpHandler,
    on_rtcp: RtcpHandler,
    on_parameters: Callable[[RTCRtpReceiveParameters], None],
) -> None:
    """Take over a receiver: RTP and RTCP go to the handlers; no decoder thread, no jitter buffer.

    The handlers are synchronous and must not raise (the caller guards them); the async shims here
    are what aiortc's DTLS receive loop awaits.
    """
    if getattr(receiver, _HOOKED, False):
        raise AiortcIncompatibleError("receiver already hooked")
    original_rtcp = receiver._handle_rtcp_packet

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        on_rtp(packet, arrival_time_ms)

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        await original_rtcp(packet)  # keeps aiortc's LSR bookkeeping for SRs
        on_rtcp(packet)

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        r: Any = receiver
        if not r._RTCRtpReceiver__started:
            for codec in parameters.codecs:
                r._RTCRtpReceiver__codecs[codec.payloadType] = codec
            for encoding in parameters.encodings:
                if encoding.rtx:
                    r._RTCRtpReceiver__rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
            r._RTCRtpReceiver__transport._register_rtp_receiver(receiver, parameters)
            # no decoder thread and no aiortc RTCP loop: the SFU sends its own RR/REMB
            r._RTCRtpReceiver__rtcp_started.set()
            r._RTCRtpReceiver__rtcp_exited.set()
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            r._RTCRtpReceiver__rtcp_task = done
            r._RTCRtpReceiver__started = True
        on_parameters(parameters)

    r: Any = receiver
    if r._RTCRtpReceiver__decoder_thread is not None:  # receive() already ran: stop its decoder
        r._RTCRtpReceiver__stop_decoder()
        task = r._RTCRtpReceiver__rtcp_task
        if task is not None:
            task.cancel()
    setattr(receiver, "_handle_rtp_packet", handle_rtp_packet)  # noqa: B010
    setattr(receiver, "_handle_rtcp_packet", handle_rtcp_packet)  # noqa: B010
    setattr(receiver, "receive", receive)  # noqa: B010
    setattr(receiver, _HOOKED, True)


def unhook_receiver(receiver: RTCRtpReceiver) -> None:
    """Drop the receiver's packets from now on (the UpTrack is closed)."""

    async def drop_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
        return None

    setattr(receiver, "_handle_rtp_packet", drop_rtp)  # noqa: B010


def receiver_started(receiver: RTCRtpReceiver) -> bool:
    r: Any = receiver
    return bool(r._RTCRtpReceiver__started)


def receiver_codecs(receiver: RTCRtpReceiver) -> dict[int, RTCRtpCodecParameters]:
    r: Any = receiver
    codecs: dict[int, RTCRtpCodecParameters] = r._RTCRtpReceiver__codecs
    return codecs


def receiver_rtx_ssrcs(receiver: RTCRtpReceiver) -> dict[int, int]:
    """RTX SSRC -> media SSRC from the SDP's FID groups."""
    r: Any = receiver
    ssrcs: dict[int, int] = r._RTCRtpReceiver__rtx_ssrc
    return ssrcs


def receiver_rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC that RTCP feedback from this receiver carries as sender SSRC."""
    r: Any = receiver
    ssrc: int | None = r._RTCRtpReceiver__rtcp_ssrc
    return ssrc


def transceiver_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs negotiated for a transceiver (after the remote description was applied)."""
    t: Any = transceiver
    codecs: list[RTCRtpCodecParameters] = list(t._codecs)
    return codecs


# ---------------------------------------------------------------------------------------------------
# senders (subscribed tracks)


def hook_sender(
    sender: RTCRtpSender,
    *,
    on_rtcp: RtcpHandler,
    on_parameters: Callable[[RTCRtpSendParameters], None],
) -> None:
    """Take over a track-less sender: no encoder loop, no aiortc SR loop; RTCP goes to ``on_rtcp``."""
    s: Any = sender

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        on_rtcp(packet)

    async def send(parameters: RTCRtpSendParameters) -> None:
        if not s._RTCRtpSender__started:
            s._RTCRtpSender__transport._register_rtp_sender(sender, parameters)
            _neutralise_sender_tasks(s)
            s._RTCRtpSender__started = True
        on_parameters(parameters)

    if s._RTCRtpSender__started:  # send() already ran: stop aiortc's RTP/RTCP loops
        for task in (s._RTCRtpSender__rtp_task, s._RTCRtpSender__rtcp_task):
            if task is not None:
                task.cancel()
    setattr(sender, "_handle_rtcp_packet", handle_rtcp_packet)  # noqa: B010
    setattr(sender, "send", send)  # noqa: B010
    setattr(sender, _HOOKED, True)


def _neutralise_sender_tasks(s: Any) -> None:
    loop = asyncio.get_running_loop()
    for name in ("rtp", "rtcp"):
        getattr(s, f"_RTCRtpSender__{name}_started").set()
        getattr(s, f"_RTCRtpSender__{name}_exited").set()
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        setattr(s, f"_RTCRtpSender__{name}_task", done)


def sender_ssrc(sender: RTCRtpSender) -> int:
    ssrc: int = sender._ssrc
    return ssrc


def sender_rtx_ssrc(sender: RTCRtpSender) -> int:
    """The RTX SSRC aiortc signals with the media SSRC in the m-line's ``a=ssrc-group:FID``."""
    ssrc: int = sender._rtx_ssrc
    return ssrc


def set_sender_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """``a=msid:<stream_id> <track_id>`` on the sender's m-line."""
    sender._stream_id = stream_id
    sender._track_id = track_id


# ---------------------------------------------------------------------------------------------------
# synchronous send path


def pc_closing(pc: aiortc.RTCPeerConnection) -> bool:
    """``close()`` has begun (by us, or by aiortc itself once the remote closed every DTLS
    transport); the public states can lag behind it."""
    return bool(pc._RTCPeerConnection__isClosed)  # type: ignore[attr-defined]


def transport_connected(transport: RTCDtlsTransport) -> bool:
    return transport._state == State.CONNECTED


def send_rtp_sync(transport: RTCDtlsTransport, data: bytes) -> bool:
    """SRTP-protect an RTP or RTCP packet and hand it to the socket now; False if not connected."""
    if transport._state != State.CONNECTED:
        return False
    srtp: Any = transport._tx_srtp
    protected: bytes = srtp.protect_rtcp(data) if is_rtcp(data) else srtp.protect(data)
    connection: Any = transport.transport._connection
    pair = connection._nominated.get(1)
    if pair is None:
        return False
    protocol = pair.protocol
    if isinstance(protocol, aioice.ice.StunProtocol):
        protocol.transport.sendto(protected, pair.remote_addr)
    else:  # TURN relay: aioice's send is a coroutine
        _sends.spawn(protocol.send_data(protected, pair.remote_addr), name="turn-send")
    return True


RtcpTap = Callable[[int, int, bytes], bool]
"""(packet type, count or fmt, packet bytes) of one packet of a compound RTCP packet -> consume it."""
_RTCP_TAPPED = "_parley_rtcp_tap"


def tap_transport_rtcp(transport: RTCDtlsTransport, tap: RtcpTap) -> None:
    """Show every decrypted RTCP packet of ``transport`` to ``tap`` before aiortc parses and routes it;
    packets ``tap`` returns True for are removed (aiortc would parse TWCC feedback as a NACK). Once per
    transport: a second call keeps the first tap. ``tap`` must not raise."""
    if getattr(transport, _RTCP_TAPPED, None) is not None:
        return
    original = transport._handle_rtcp_data

    async def handle_rtcp_data(data: bytes) -> None:
        try:
            kept = [packet for pt, fmt, packet in split_rtcp(data) if not tap(pt, fmt, packet)]
        except ValueError:  # malformed: aiortc drops it with its own log line
            await original(data)
            return
        if len(kept) == 1:
            await original(kept[0])
        elif kept:
            await original(b"".join(kept))

    setattr(transport, "_handle_rtcp_data", handle_rtcp_data)  # noqa: B010
    setattr(transport, _RTCP_TAPPED, tap)


def split_rtcp(data: bytes) -> list[tuple[int, int, bytes]]:
    """(packet type, count or fmt, bytes) of each packet of a compound RTCP packet; ``ValueError``
    when malformed."""
    packets: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(data) < pos + 4 or data[pos] >> 6 != 2:
            raise ValueError("malformed RTCP packet")
        end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3]) * 4
        if end > len(data):
            raise ValueError("truncated RTCP packet")
        packets.append((data[pos + 1], data[pos] & 0x1F, data[pos:end]))
        pos = end
    return packets


def header_extension_ids(
    parameters: RTCRtpSendParameters | RTCRtpReceiveParameters,
) -> dict[str, int]:
    """URI -> negotiated extension id."""
    return {ext.uri: ext.id for ext in parameters.headerExtensions}


# ---------------------------------------------------------------------------------------------------
# observation taps (tests and debugging): wrap, never replace, aiortc's own handling


def tap_receiver_rtp(receiver: RTCRtpReceiver, observe: RtpHandler) -> None:
    """Call ``observe(packet, arrival_ms)`` for every RTP packet before the receiver handles it."""
    original = receiver._handle_rtp_packet

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        observe(packet, arrival_time_ms)
        await original(packet, arrival_time_ms)

    setattr(receiver, "_handle_rtp_packet", handle_rtp_packet)  # noqa: B010


def tap_sender_rtcp(sender: RTCRtpSender, observe: RtcpHandler) -> None:
    """Call ``observe(packet)`` for every RTCP packet routed to ``sender`` before it handles it."""
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        observe(packet)
        await original(packet)

    setattr(sender, "_handle_rtcp_packet", handle_rtcp_packet)  # noqa: B010
