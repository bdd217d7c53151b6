"""Fail loudly when an aiortc/aioice upgrade changes a private API that aiortc_internals relies on."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from importlib.metadata import version
from typing import Any

import aioice.ice
import aiortc.rtcpeerconnection
import aiortc.rtp
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.exceptions import InvalidStateError
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter, State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RtcpRtpfbPacket, RtpPacket

from parley.config import RtcConfig
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media import configure
from parley.sfu.media.aiortc_internals import URI_MID, URI_RID, URI_RRID

pytestmark = pytest.mark.unit

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
MID_EXT = [RTCRtpHeaderExtensionParameters(id=1, uri=URI_MID)]


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_pinned_versions() -> None:
    assert version("aiortc") == "1.16.0", "aiortc_internals is written against aiortc 1.16.0: re-check it"
    assert version("aioice") == "0.13.0", "aiortc_internals is written against aioice 0.13.0: re-check it"


def test_signatures_of_the_private_methods_we_replace_or_call() -> None:
    assert _params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"]
    assert _params(RTCRtpReceiver._handle_rtcp_packet) == ["self", "packet"]
    assert _params(RTCRtpReceiver.receive) == ["self", "parameters"]
    assert _params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    assert _params(RTCRtpSender.send) == ["self", "parameters"]
    assert _params(RTCDtlsTransport._send_rtp) == ["self", "data"]
    assert _params(RTCDtlsTransport._register_rtp_receiver) == ["self", "receiver", "parameters"]
    assert _params(RTCDtlsTransport._register_rtp_sender) == ["self", "sender", "parameters"]
    assert _params(RtpRouter.register_receiver) == ["self", "receiver", "ssrcs", "payload_types", "mid"]
    assert "route_rtp(packet)" in inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "_handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in inspect.getsource(
        RTCDtlsTransport._handle_rtp_data
    )
    connection: Any = aioice.ice.Connection
    gather = getattr(connection, "_parley_original_get_component_candidates", None)
    gather = gather or connection.get_component_candidates  # configure() may have patched it already
    assert "StunProtocol(self), local_addr=(address, 0)" in inspect.getsource(gather)
    assert _params(gather) == [
        "self",
        "component",
        "addresses",
        "timeout",
    ]
    assert _params(aioice.ice.get_host_addresses) == ["use_ipv4", "use_ipv6"]
    assert "get_host_addresses(" in inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert _params(aioice.ice.server_reflexive_candidate) == ["protocol", "stun_server"]
    assert "receiver.receive(" in inspect.getsource(RTCPeerConnection._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    assert "sender.send(" in inspect.getsource(RTCPeerConnection._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    # helpers the UpTrack reuses from aiortc
    assert _params(NackGenerator.add) == ["self", "packet"]
    assert _params(StreamStatistics.__init__) == ["self", "clockrate"]
    # codec negotiation: the module-level function we replace, and the check we build on
    assert _params(aiortc.rtcpeerconnection.is_codec_compatible) == ["a", "b"]
    assert "find_common_codecs(CODECS[media.kind], media.rtp.codecs)" in inspect.getsource(
        RTCPeerConnection.setRemoteDescription
    )


async def test_private_attributes_exist_on_real_objects() -> None:
    pc = RTCPeerConnection()
    try:
        t = pc.addTransceiver("video")
        r: Any = t.receiver
        s: Any = t.sender
        for name in (
            "started",
            "codecs",
            "rtx_ssrc",
            "transport",
            "rtcp_started",
            "rtcp_exited",
            "rtcp_task",
            "decoder_thread",
            "rtcp_ssrc",
        ):
            assert hasattr(r, f"_RTCRtpReceiver__{name}"), name
        assert callable(r._RTCRtpReceiver__stop_decoder)
        for name in (
            "started",
            "transport",
            "rtp_task",
            "rtcp_task",
            "rtp_started",
            "rtp_exited",
            "rtcp_started",
            "rtcp_exited",
        ):
            assert hasattr(s, f"_RTCRtpSender__{name}"), name
        assert isinstance(s._ssrc, int) and isinstance(s._stream_id, str) and isinstance(s._track_id, str)
        assert internals.receiver_rtcp_ssrc(t.receiver) == s._ssrc
        # the RTX SSRC our retransmissions use is the one aiortc signals in a=ssrc-group:FID
        assert isinstance(s._rtx_ssrc, int) and internals.sender_rtx_ssrc(t.sender) == s._rtx_ssrc
        await pc.setLocalDescription(await pc.createOffer())
        assert f"a=ssrc-group:FID {s._ssrc} {s._rtx_ssrc}" in pc.localDescription.sdp
        assert isinstance(internals.transceiver_codecs(t), list)
        transport: Any = t.receiver.transport
        assert transport._state == State.NEW
        assert hasattr(transport, "_tx_srtp") and hasattr(transport, "_rtp_header_extensions_map")
        assert isinstance(transport._rtp_router, RtpRouter)
        connection: Any = transport.transport._connection
        assert isinstance(connection, aioice.ice.Connection)
        assert connection._nominated == {} and isinstance(connection._protocols, list)
        assert hasattr(connection, "stun_server") and hasattr(connection, "turn_server")
        assert not internals.send_rtp_sync(t.receiver.transport, b"\x80" * 12)  # not connected
    finally:
        await pc.close()


async def test_a_closing_peer_connection_is_told_while_its_public_states_lag() -> None:
    """aiortc closes a PC by itself when the client closed DTLS; an offer being applied meanwhile sets
    signalingState back from "closed", so only the private flag tells the negotiation why it failed."""
    client, pc = RTCPeerConnection(), RTCPeerConnection()
    try:
        client.addTransceiver("audio")
        await client.setLocalDescription(await client.createOffer())
        assert not internals.pc_closing(pc)
        applying = asyncio.ensure_future(pc.setRemoteDescription(client.localDescription))
        await asyncio.sleep(0)  # the offer is being applied when the close begins
        closing = asyncio.ensure_future(pc.close())
        await asyncio.sleep(0)
        assert internals.pc_closing(pc) and pc.signalingState == "closed"
        await applying
        assert pc.signalingState == "have-remote-offer"  # set back by the offer
        assert internals.pc_closing(pc)
        with pytest.raises(InvalidStateError, match="RTCPeerConnection is closed"):
            await pc.createAnswer()
        await closing
    finally:
        await client.close()
        await pc.close()


async def test_hooked_receiver_gets_routed_packets_and_starts_no_decoder_thread() -> None:
    configure(RtcConfig(use_loopback=True))
    pc = RTCPeerConnection()
    try:
        t1 = pc.addTransceiver("video")
        t2 = pc.addTransceiver("video")
        got: dict[str, list[int]] = {"a": [], "b": []}
        params: list[RTCRtpReceiveParameters] = []
        internals.hook_receiver(
            t1.receiver,
            on_rtp=lambda p, _t: got["a"].append(p.ssrc),
            on_rtcp=lambda p: None,
            on_parameters=params.append,
        )
        internals.hook_receiver(
            t2.receiver,
            on_rtp=lambda p, _t: got["b"].append(p.ssrc),
            on_rtcp=lambda p: None,
            on_parameters=params.append,
        )
        threads = threading.active_count()
        await t1.receiver.receive(RTCRtpReceiveParameters(codecs=[VP8], headerExtensions=MID_EXT, muxId="a"))
        await t2.receiver.receive(RTCRtpReceiveParameters(codecs=[VP8], headerExtensions=MID_EXT, muxId="b"))
        assert threading.active_count() == threads
        r: Any = t1.receiver
        assert r._RTCRtpReceiver__decoder_thread is None and len(params) == 2
        # both receivers share PT 96 on one transport: unsignalled SSRCs are routed by MID
        transport: Any = t1.receiver.transport
        assert t2.receiver.transport is transport  # bundled by default policy for the same kind
        for ssrc, mid in ((111, "b"), (222, "a")):
            packet = RtpPacket(payload_type=96, sequence_number=1, ssrc=ssrc, payload=b"\x10\x00")
            packet.extensions.mid = mid
            await transport._handle_rtp_data(packet.serialize(transport._rtp_header_extensions_map), 0)
        no_mid = RtpPacket(payload_type=96, sequence_number=2, ssrc=111, payload=b"\x10\x00")
        await transport._handle_rtp_data(no_mid.serialize(), 0)  # learnt SSRC, no MID needed any more
        assert got == {"a": [222], "b": [111, 111]}
        await t1.receiver.stop()  # aiortc's stop() still completes with the hooked receive()
    finally:
        await pc.close()


async def test_hooked_sender_runs_no_encoder_loop_and_stops() -> None:
    pc = RTCPeerConnection()
    try:
        t = pc.addTransceiver("video", direction="sendonly")
        seen: list[RTCRtpSendParameters] = []
        internals.hook_sender(t.sender, on_rtcp=lambda p: None, on_parameters=seen.append)
        internals.set_sender_msid(t.sender, "PA_x|TR_y", "TR_y")
        await t.sender.send(RTCRtpSendParameters(codecs=[VP8], headerExtensions=MID_EXT, muxId="0"))
        s: Any = t.sender
        assert s._RTCRtpSender__rtp_task.done() and s._RTCRtpSender__rtcp_task.done()
        assert seen and internals.sender_ssrc(t.sender) == s._ssrc
        await t.sender.stop()
        await pc.setLocalDescription(await pc.createOffer())
        assert "a=msid:PA_x|TR_y TR_y" in pc.localDescription.sdp
    finally:
        await pc.close()


def test_codec_and_extension_lists_after_configure() -> None:
    configure(RtcConfig(use_loopback=True))
    configure(RtcConfig(use_loopback=True))  # idempotent
    video = [c.mimeType for c in CODECS["video"]]
    assert video.count("video/VP9") == 1 and video.count("video/AV1") == 1
    assert video[0] == "video/VP8"
    assert not any(c.mimeType.lower().endswith("/red") for k in CODECS.values() for c in k)
    uris = [e.uri for e in HEADER_EXTENSIONS["video"]]
    assert uris.count(URI_RID) == 1 and uris.count(URI_RRID) == 1
    pts = [c.payloadType for k in CODECS.values() for c in k]
    assert len(pts) == len(set(pts))


def test_codec_negotiation_patch_is_installed() -> None:
    configure(RtcConfig(use_loopback=True))
    assert aiortc.rtcpeerconnection.find_common_codecs is internals.find_common_codecs
    vp9 = RTCRtpCodecParameters(mimeType="video/VP9", clockRate=90000, payloadType=35)
    vp9_p2 = RTCRtpCodecParameters(
        mimeType="video/VP9", clockRate=90000, payloadType=100, parameters={"profile-id": "2"}
    )
    rtx = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=36, parameters={"apt": 35})
    common = internals.find_common_codecs(CODECS["video"], [vp9_p2, vp9, rtx])
    assert [(c.payloadType, c.mimeType) for c in common] == [(35, "video/VP9"), (36, "video/rtx")]


def test_host_addresses_patch() -> None:
    configure(RtcConfig(use_loopback=True))
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    configure(RtcConfig(node_ip="127.0.0.1"))
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    internals.set_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    configure(RtcConfig(use_loopback=True))


def test_port_allocator_stays_in_range_and_skips_busy_ports() -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    allocator = internals.PortAllocator(port, port + 1)
    try:
        sock = allocator.bind("127.0.0.1")
        assert sock.getsockname()[1] == port + 1
        with pytest.raises(OSError):
            allocator.bind("127.0.0.1")
        sock.close()
    finally:
        busy.close()


def test_transport_cc_internals() -> None:
    """What the transport-wide-cc negotiation and the RTCP tap rely on."""
    module: Any = aiortc.rtcpeerconnection
    original = getattr(module, "_parley_original_create_media_description", None)
    original = original or module.create_media_description_for_transceiver
    assert _params(original) == ["transceiver", "cname", "direction", "mid"]
    for method in (RTCPeerConnection.createOffer, RTCPeerConnection.createAnswer):
        assert "create_media_description_for_transceiver(" in inspect.getsource(method)
    assert "transceiver._headerExtensions = find_common_header_extensions(" in inspect.getsource(
        RTCPeerConnection.setRemoteDescription
    )
    assert _params(RTCDtlsTransport._handle_rtcp_data) == ["self", "data"]
    assert "await self._handle_rtcp_data(data)" in inspect.getsource(RTCDtlsTransport._recv_next)  # type: ignore[attr-defined]
    # aiortc parses the transport-wide sequence number of a negotiated extension (the loopback test reads it)
    assert "transport_sequence_number" in inspect.getsource(aiortc.rtp.HeaderExtensionsMap.get)


async def test_transport_cc_only_on_m_lines_we_only_send() -> None:
    configure(RtcConfig(use_loopback=True))
    uris = {e.uri for kind in HEADER_EXTENSIONS.values() for e in kind}
    assert internals.URI_TWCC in uris
    ids = {e.id for e in HEADER_EXTENSIONS["audio"] if e.uri == internals.URI_TWCC}
    assert ids == {e.id for e in HEADER_EXTENSIONS["video"] if e.uri == internals.URI_TWCC}
    assert ids.isdisjoint(
        e.id for kind in HEADER_EXTENSIONS.values() for e in kind if e.uri != internals.URI_TWCC
    )
    sfu = RTCPeerConnection()
    client = RTCPeerConnection()
    try:
        sfu.addTransceiver("video", direction="sendonly")
        sfu.addTransceiver("audio", direction="recvonly")
        await sfu.setLocalDescription(await sfu.createOffer())
        video_m, audio_m = sfu.localDescription.sdp.split("m=")[1:]
        assert internals.URI_TWCC in video_m and "transport-cc" in video_m
        assert internals.URI_TWCC not in audio_m and "transport-cc" not in audio_m
        assert all(
            internals.TRANSPORT_CC in c.rtcpFeedback for c in CODECS["video"] if "rtx" not in c.mimeType
        )
        # an aiortc client answers recvonly / sendonly: its own answer follows the same rule
        await client.setRemoteDescription(sfu.localDescription)
        await client.setLocalDescription(await client.createAnswer())
        video_a, _audio_a = client.localDescription.sdp.split("m=")[1:]
        assert internals.URI_TWCC not in video_a  # the client only receives video
    finally:
        await sfu.close()
        await client.close()


async def test_rtcp_tap_sees_and_removes_packets_before_aiortc_routes_them() -> None:
    pc = RTCPeerConnection()
    try:
        t = pc.addTransceiver("video")
        transport: Any = t.receiver.transport
        routed: list[bytes] = []

        async def original(data: bytes) -> None:
            routed.append(data)

        transport._handle_rtcp_data = original
        seen: list[tuple[int, int]] = []

        def tap(pt: int, fmt: int, packet: bytes) -> bool:
            seen.append((pt, fmt))
            return pt == 205 and fmt == 15

        internals.tap_transport_rtcp(transport, tap)
        internals.tap_transport_rtcp(transport, lambda pt, fmt, packet: True)  # the first tap stays
        nack = bytes(RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=2, lost=[5]))
        twcc = bytes(RtcpRtpfbPacket(fmt=15, ssrc=1, media_ssrc=2))
        await transport._handle_rtcp_data(twcc + nack)
        await transport._handle_rtcp_data(twcc)
        await transport._handle_rtcp_data(b"\x80")  # malformed: passed on as is
        assert seen == [(205, 15), (205, 1), (205, 15)]
        assert routed == [nack, b"\x80"]
    finally:
        await pc.close()
