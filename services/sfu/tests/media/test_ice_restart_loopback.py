"""ICE restart (``media/ice_restart.py``) between real aiortc peers on loopback.

The client side is plain aiortc acting as the browser; aiortc cannot restart ICE, so it uses the same
module (``restart_ice`` for the offerer, ``install`` for an answerer that must follow a restart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import pytest
from aiortc import AudioStreamTrack, RTCConfiguration, RTCDataChannel, RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket

from parley.config import RtcConfig
from parley.sfu.media import MediaContext, UpTrack, ice_restart, new_peer_connection
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.ice_restart import IceLink, IceRestartError, ice_link, install, restart_ice
from parley.testing import poll_until

pytestmark = pytest.mark.integration


@dataclass
class Call:
    client: RTCPeerConnection
    sfu: RTCPeerConnection
    channel: RTCDataChannel
    rtp_at_sfu: list[int] = field(default_factory=lambda: [0])
    echoes: list[str] = field(default_factory=list)
    sfu_states: list[str] = field(default_factory=list)
    client_states: list[str] = field(default_factory=list)
    up: UpTrack | None = None

    def rtp(self) -> int:
        return self.rtp_at_sfu[0]

    async def close(self) -> None:
        if self.up is not None:
            self.up.close()
        await self.client.close()
        await self.sfu.close()


def _ufrag(description: str) -> str:
    match = re.search(r"a=ice-ufrag:(\S+)", description)
    assert match is not None
    return match.group(1)


def _dtls(pc: RTCPeerConnection) -> RTCDtlsTransport:
    transport: RTCDtlsTransport = pc.getTransceivers()[0].receiver.transport
    return transport


def _ice(pc: RTCPeerConnection) -> Any:
    return _dtls(pc).transport


async def _connect_publisher() -> Call:
    """client (audio + a data channel) offers to an SFU peer connection, which echoes messages."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTrack(AudioStreamTrack())
    channel = client.createDataChannel("reliable")
    install(client)
    sfu = new_peer_connection()
    call = Call(client, sfu, channel)

    @sfu.on("datachannel")  # type: ignore[untyped-decorator]
    def on_datachannel(ch: RTCDataChannel) -> None:
        @ch.on("message")  # type: ignore[untyped-decorator]
        def on_message(message: str) -> None:
            ch.send(message)

    @channel.on("message")  # type: ignore[untyped-decorator]
    def on_echo(message: str) -> None:
        call.echoes.append(message)

    sfu.on("connectionstatechange", lambda: call.sfu_states.append(sfu.connectionState))
    client.on("connectionstatechange", lambda: call.client_states.append(client.connectionState))

    await client.setLocalDescription(await client.createOffer())
    await sfu.setRemoteDescription(client.localDescription)
    transceiver = sfu.getTransceivers()[0]
    call.up = UpTrack(
        transceiver.receiver,
        kind="audio",
        mid=transceiver.mid or "",
        track_sid="TR_a",
        context=MediaContext(),
    )

    def count(packet: RtpPacket, arrival_ms: int) -> None:
        call.rtp_at_sfu[0] += 1

    internals.tap_receiver_rtp(transceiver.receiver, count)
    await sfu.setLocalDescription(await sfu.createAnswer())
    await client.setRemoteDescription(sfu.localDescription)
    await poll_until(lambda: call.rtp() > 10, timeout=15, message="RTP at the SFU")
    await _echo(call, "hello")
    return call


async def _echo(call: Call, text: str) -> None:
    await poll_until(lambda: call.channel.readyState == "open", message="data channel open")
    call.channel.send(text)
    await poll_until(lambda: text in call.echoes, timeout=15, message=f"echo of {text!r}")


async def _more_rtp(call: Call, count: int = 25) -> None:
    start = call.rtp()
    await poll_until(lambda: call.rtp() >= start + count, timeout=15, message="RTP after the restart")


async def _client_restart(call: Call) -> tuple[str, str]:
    """The browser's resume: an ICE-restart offer on the publisher PC, our answer; both ufrags."""
    await restart_ice(call.client)
    await call.client.setLocalDescription(await call.client.createOffer())
    await call.sfu.setRemoteDescription(call.client.localDescription)
    await call.sfu.setLocalDescription(await call.sfu.createAnswer())
    await call.client.setRemoteDescription(call.sfu.localDescription)
    return _ufrag(call.client.localDescription.sdp), _ufrag(call.sfu.localDescription.sdp)


@dataclass(frozen=True)
class DtlsSnapshot:
    transport: RTCDtlsTransport
    ssl: object
    rx_srtp: object
    tx_srtp: object
    role: str
    peer_fingerprint: bytes

    @classmethod
    def of(cls, pc: RTCPeerConnection) -> DtlsSnapshot:
        dtls: Any = _dtls(pc)
        cert = dtls._ssl.get_peer_certificate(as_cryptography=True)
        return cls(
            dtls,
            dtls._ssl,
            dtls._rx_srtp,
            dtls._tx_srtp,
            dtls._role,
            cert.fingerprint(cert.signature_hash_algorithm),
        )

    def assert_unchanged(self, pc: RTCPeerConnection) -> None:
        now = DtlsSnapshot.of(pc)
        assert now.transport is self.transport, "a new DTLS transport"
        assert now.ssl is self.ssl and now.rx_srtp is self.rx_srtp and now.tx_srtp is self.tx_srtp, (
            "new DTLS/SRTP"
        )
        assert (now.role, now.peer_fingerprint) == (self.role, self.peer_fingerprint)
        assert self.transport.state == "connected"


def _watch_dtls(pc: RTCPeerConnection) -> list[str]:
    states: list[str] = []
    dtls = _dtls(pc)
    dtls.on("statechange", lambda: states.append(dtls.state))
    return states


async def test_client_restart_keeps_dtls_and_media_flows_on_the_new_connection(rtc: RtcConfig) -> None:
    call = await _connect_publisher()
    try:
        sfu_link = ice_link(call.sfu)
        assert sfu_link.state == "connected" and sfu_link.generation == 0
        client_dtls, sfu_dtls = DtlsSnapshot.of(call.client), DtlsSnapshot.of(call.sfu)
        dtls_events = _watch_dtls(call.client) + _watch_dtls(call.sfu)
        old_sfu, old_client = _ice(call.sfu)._connection, _ice(call.client)._connection
        ufrags = (_ufrag(call.client.localDescription.sdp), _ufrag(call.sfu.localDescription.sdp))
        changes: list[tuple[str, int]] = []
        sfu_link.on_state_change(lambda link: changes.append((link.state, link.generation)))

        new_ufrags = await _client_restart(call)
        assert new_ufrags[0] != ufrags[0] and new_ufrags[1] != ufrags[1], "new credentials both ways"
        assert await sfu_link.wait_connected(15, min_generation=1)
        assert await ice_link(call.client).wait_connected(15, min_generation=1)

        new_sfu = _ice(call.sfu)._connection
        assert new_sfu is not old_sfu and _ice(call.client)._connection is not old_client
        assert new_sfu.local_username == new_ufrags[1] and new_sfu.remote_username == new_ufrags[0]
        await poll_until(lambda: old_sfu._closed and old_client._closed, message="old connections closed")
        assert new_sfu._query_consent_task is not None and not new_sfu._query_consent_task.done()
        # media and data now can only flow over the new connections
        await _more_rtp(call)
        await _echo(call, "after restart")
        client_dtls.assert_unchanged(call.client)
        sfu_dtls.assert_unchanged(call.sfu)
        assert dtls_events == [], "DTLS state changed"
        assert "failed" not in call.sfu_states and "closed" not in call.sfu_states
        assert call.sfu.connectionState == "connected" and call.client.connectionState == "connected"
        assert call.sfu.iceConnectionState == "completed"
        assert ("connected", 1) in changes
        # trickled candidates go to the newest connection: a duplicate of a known one is ignored
        known = len(new_sfu.remote_candidates)
        candidate = _ice(call.client).iceGatherer.getLocalCandidates()[0]
        candidate.sdpMid = call.sfu.getTransceivers()[0].mid
        await call.sfu.addIceCandidate(candidate)
        assert len(new_sfu.remote_candidates) == known
        # the remote closing (DTLS close_notify) still closes the SFU's peer connection
        await call.client.close()
        await poll_until(lambda: call.sfu.connectionState == "closed", message="SFU PC closed by the remote")
        assert ice_link(call.sfu).state == "closed"
    finally:
        await call.close()


class _Blackhole:
    """A datagram transport that sends nothing (closing still closes the real one)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def sendto(self, data: bytes, addr: Any = None) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_restart_brings_media_back_after_the_path_broke(
    rtc: RtcConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # consent freshness in ~1 s instead of 30 s, so the SFU sees its connection fail
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    call = await _connect_publisher()
    try:
        sfu_link, client_link = ice_link(call.sfu), ice_link(call.client)
        sfu_dtls, client_dtls = DtlsSnapshot.of(call.sfu), DtlsSnapshot.of(call.client)
        seen: list[str] = []
        sfu_link.on_state_change(lambda link: seen.append(link.state))

        # the client's network goes away: nothing in or out on its old sockets any more
        for protocol in list(_ice(call.client)._connection._protocols):
            protocol.datagram_received = lambda data, addr: None
            protocol.transport = _Blackhole(protocol.transport)
        await poll_until(lambda: client_link.state == "disconnected", message="client sees the loss")
        await poll_until(lambda: sfu_link.state == "disconnected", timeout=15, message="SFU consent expiry")
        assert call.sfu.connectionState == "failed"  # what the session layer hears about
        assert "disconnected" in seen
        # ... but nothing is torn down: DTLS and the peer connection stay, media has stopped
        last = [-1]

        def stalled() -> bool:
            quiet = call.rtp() == last[0]
            last[0] = call.rtp()
            return quiet

        await poll_until(stalled, interval=0.3, message="media stopped")
        assert call.sfu.signalingState != "closed" and _dtls(call.sfu).state == "connected"
        assert not await sfu_link.wait_connected(0.05)

        await _client_restart(call)
        assert await sfu_link.wait_connected(15, min_generation=1)
        await poll_until(lambda: call.sfu.connectionState == "connected", message="SFU PC connected again")
        assert await client_link.wait_connected(15, min_generation=1)
        await _more_rtp(call)
        await _echo(call, "back")
        sfu_dtls.assert_unchanged(call.sfu)
        client_dtls.assert_unchanged(call.client)
        assert "closed" not in call.sfu_states
    finally:
        await call.close()


async def test_server_restart_of_a_server_offered_pc(rtc: RtcConfig, publisher: Any) -> None:
    room = await publisher(("audio",))
    try:
        sub = await room.subscribe(("audio",))
        sfu_out: RTCPeerConnection = room.pcs[-2]
        install(sub.pc)  # the browser-like answerer follows the restart
        got = [0]
        await poll_until(lambda: "audio" in sub.tracks, timeout=15, message="subscriber track")
        internals.tap_receiver_rtp(
            sub.pc.getTransceivers()[0].receiver, lambda p, t: got.__setitem__(0, got[0] + 1)
        )
        await poll_until(lambda: got[0] > 10, timeout=15, message="RTP at the subscriber")
        sfu_dtls, sub_dtls = DtlsSnapshot.of(sfu_out), DtlsSnapshot.of(sub.pc)
        old_ufrag = _ufrag(sfu_out.localDescription.sdp)
        old_sub_ufrag = _ufrag(sub.pc.localDescription.sdp)

        await restart_ice(sfu_out)
        assert ice_link(sfu_out).restarting
        await sfu_out.setLocalDescription(await sfu_out.createOffer())
        assert _ufrag(sfu_out.localDescription.sdp) != old_ufrag
        await sub.pc.setRemoteDescription(sfu_out.localDescription)
        await sub.pc.setLocalDescription(await sub.pc.createAnswer())
        assert _ufrag(sub.pc.localDescription.sdp) != old_sub_ufrag
        await sfu_out.setRemoteDescription(sub.pc.localDescription)

        assert await ice_link(sfu_out).wait_connected(15, min_generation=1)
        assert await ice_link(sub.pc).wait_connected(15, min_generation=1)
        start = got[0]
        await poll_until(lambda: got[0] > start + 25, timeout=15, message="RTP after the server restart")
        sfu_dtls.assert_unchanged(sfu_out)
        sub_dtls.assert_unchanged(sub.pc)
        assert sfu_out.connectionState == "connected"
    finally:
        await room.close()


async def test_restart_ice_needs_a_started_transport(rtc: RtcConfig) -> None:
    pc = new_peer_connection()
    try:
        pc.addTransceiver("audio")
        with pytest.raises(IceRestartError):
            await restart_ice(pc)
        assert isinstance(ice_link(pc), IceLink) and ice_link(pc).state == "new"
        assert ice_restart.install(pc) is ice_link(pc)
    finally:
        await pc.close()


async def test_restart_before_the_first_connection(rtc: RtcConfig) -> None:
    """Initial checks cannot succeed (the client's first sockets are dead); a restart connects, and
    DTLS makes its first handshake over the restarted connection."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    install(client)
    client.addTrack(AudioStreamTrack())
    sfu = new_peer_connection()
    try:
        await client.setLocalDescription(await client.createOffer())
        for protocol in list(_ice(client)._connection._protocols):
            protocol.datagram_received = lambda data, addr: None
            protocol.transport = _Blackhole(protocol.transport)
        await sfu.setRemoteDescription(client.localDescription)
        await sfu.setLocalDescription(await sfu.createAnswer())
        await client.setRemoteDescription(sfu.localDescription)
        await poll_until(
            lambda: ice_link(sfu).state == ice_link(client).state == "checking",
            message="initial checks running",
        )
        assert _dtls(sfu).state in ("new", "connecting")

        await restart_ice(client)
        await client.setLocalDescription(await client.createOffer())
        await sfu.setRemoteDescription(client.localDescription)
        await sfu.setLocalDescription(await sfu.createAnswer())
        await client.setRemoteDescription(sfu.localDescription)
        assert await ice_link(sfu).wait_connected(15, min_generation=1)
        await poll_until(lambda: sfu.connectionState == "connected", timeout=15, message="SFU PC connected")
        await poll_until(
            lambda: client.connectionState == "connected", timeout=15, message="client connected"
        )
        assert _dtls(sfu).state == "connected" and sfu.iceConnectionState == "completed"
    finally:
        await client.close()
        await sfu.close()


async def test_a_second_restart_offer_replaces_a_pending_restart(rtc: RtcConfig) -> None:
    """A resume retried before the first restart finished: the newest credentials win."""
    call = await _connect_publisher()
    try:
        await restart_ice(call.client)
        await call.client.setLocalDescription(await call.client.createOffer())
        await call.sfu.setRemoteDescription(call.client.localDescription)
        await call.sfu.setLocalDescription(await call.sfu.createAnswer())  # never reaches the client
        abandoned = _ice(call.sfu).iceGatherer._connection
        assert ice_link(call.sfu).restarting and ice_link(call.sfu).state == "connected"

        await _client_restart(call)
        assert await ice_link(call.sfu).wait_connected(15, min_generation=1)
        assert abandoned._closed and _ice(call.sfu)._connection is not abandoned
        assert ice_link(call.sfu).generation == 1
        await _more_rtp(call)
        await _echo(call, "second")
    finally:
        await call.close()
