"""The cached send path (``media/send_path.py``) against the reference (``send_rtp_sync``).

Two DTLS transports with the same SRTP key stand in for one subscriber: the reference path sends on
one, the cached path on the other, the same packets; SRTP is deterministic for a key, SSRC and index,
so the two wires must carry the same bytes, and the receiver's session must decrypt them to what
the down track wrote. The packets are a recorded down track's: simulcast switches with VP8
descriptor munging, NACKs answered as RTX, padding probes and sender reports (RTCP, which goes
through the reference path); each is also written by ``RtpWriter.write_reference`` and compared with
the fast layout ``write`` used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aioice.ice
import pylibsrtp
import pytest
from aioice.candidate import Candidate
from aiortc import RTCCertificate, RTCIceGatherer, RTCIceTransport
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket, is_rtcp
from pylibsrtp import Policy, Session

from parley.config import RtcConfig
from parley.sfu.media import DownTrack, MediaContext, UpTrack, configure, new_peer_connection, send_path
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.aiortc_internals import URI_ABS_SEND_TIME, URI_MID, URI_RID
from parley.sfu.media.rtp_writer import RtpWriter
from parley.sfu.media.send_path import SendPath

pytestmark = pytest.mark.unit

KEY = bytes(range(30))
"""AES_CM_128_HMAC_SHA1_80 master key (16) and salt (14), the same for both wires."""
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96})
KEYFRAME = (
    bytes([0x90, 0x80, 0x05, 0x00, 0x00, 0x00]) + b"\x9d\x01\x2a" + bytes([0x80, 2, 0x68, 1]) + bytes(40)
)
DELTA = bytes([0x90, 0x80, 0x05, 0x01, 0, 0, 0]) + bytes(60)


@pytest.fixture(autouse=True)
def _configured() -> None:
    configure(RtcConfig(use_loopback=True, port_range_start=42000, port_range_end=42999))


class Wire:
    """The selected pair's loop transport: records what is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.closing = False

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((bytes(data), addr))

    def is_closing(self) -> bool:
        return self.closing


class Relay:
    """A TURN client protocol stand-in: aioice sends through a coroutine."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send_data(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)


def _pair(connection: Any, protocol: Any, port: int) -> aioice.ice.CandidatePair:
    remote = Candidate(
        foundation=str(port),
        component=1,
        transport="udp",
        priority=1,
        host="127.0.0.1",
        port=port,
        type="host",
    )
    return aioice.ice.CandidatePair(protocol, remote)


def _stun(connection: Any, wire: Wire) -> aioice.ice.StunProtocol:
    protocol = aioice.ice.StunProtocol(connection)
    protocol.transport = wire  # type: ignore[assignment]
    return protocol


def _dtls() -> RTCDtlsTransport:
    return RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])


def _connect(dtls: RTCDtlsTransport, wire: Wire, port: int = 5000) -> aioice.ice.CandidatePair:
    """What ICE and DTLS leave behind once settled: a selected pair, the SRTP session, CONNECTED."""
    policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as aiortc's
    dtls._tx_srtp = Session(policy)
    connection: Any = dtls.transport._connection
    pair = _pair(connection, _stun(connection, wire), port)
    connection._nominated[1] = pair
    dtls._set_state(State.CONNECTED)
    return pair


def _receiver() -> Session:
    return Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))


def _decrypt(session: Session, data: bytes) -> bytes:
    return session.unprotect_rtcp(data) if is_rtcp(data) else session.unprotect(data)


def _rtp(seq: int, size: int = 100) -> bytes:
    return (
        bytes([0x80, 111])
        + seq.to_bytes(2, "big")
        + (seq * 960).to_bytes(4, "big")
        + (4242).to_bytes(4, "big")
        + bytes(size)
    )


# ---- pinned internals


def test_the_internals_the_cached_path_uses_exist() -> None:
    session = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    cached: Any = session
    assert len(cached._buffer) == 1500 and cached._cdata is not None and cached._srtp[0] is not None
    assert pylibsrtp.SRTP_MAX_TRAILER_LEN == send_path.SRTP_MAX_TRAILER_LEN  # type: ignore[attr-defined]
    assert callable(pylibsrtp._binding.lib.srtp_protect)
    connection = aioice.ice.Connection(ice_controlling=False)
    assert type(connection._nominated) is dict
    assert "remote_addr" in vars(aioice.ice.CandidatePair)
    dtls = _dtls()
    assert dtls._state == State.NEW and dtls.transport._connection is not None


# ---- byte identity on a recorded down track sequence


class CheckedWriter(RtpWriter):
    """Writes with the fast layout and checks it against the reference, element by element."""

    __slots__ = ("writes",)

    def __init__(self, extension_ids: dict[str, int], mid: str | None) -> None:
        super().__init__(extension_ids, mid)
        self.writes = 0

    def write(self, packet: RtpPacket, **fields: Any) -> bytes:
        fields.setdefault("wall_now", time.time())  # one clock reading for both
        fast = super().write(packet, **fields)
        assert fast == self.write_reference(packet, **fields)
        self.writes += 1
        return fast


class Twin:
    """A down track whose every packet goes out on both wires: the cached path (its own transport)
    and the reference path (a twin transport with the same key)."""

    def __init__(self, up: UpTrack, down: DownTrack, transport: RTCDtlsTransport) -> None:
        self.up, self.down = up, down
        self.fast_wire, self.reference_wire = Wire(), Wire()
        _connect(transport, self.fast_wire)
        self.twin = _dtls()
        _connect(self.twin, self.reference_wire)
        self.plain: list[bytes] = []
        self.seq = {"q": 100, "h": 5000, "f": 65530}
        self.ssrc = {"q": 1111, "h": 2222, "f": 3333}
        self.ts = {"q": 10, "h": 1_000_000, "f": 7_000_000}
        cached = down._transmit

        def tee(data: bytes) -> bool:
            self.plain.append(data)
            reference = internals.send_rtp_sync(self.twin, data)
            fast = cached(data)
            assert fast == reference
            return fast

        down._transmit = tee  # type: ignore[method-assign]

    def feed(self, rid: str, key: bool = False) -> None:
        packet = RtpPacket(
            payload_type=96, sequence_number=self.seq[rid], timestamp=self.ts[rid], ssrc=self.ssrc[rid]
        )
        packet.payload = KEYFRAME if key else DELTA
        packet.extensions.rtp_stream_id = rid
        packet.extensions.mid = "0"
        self.seq[rid] = (self.seq[rid] + 1) & 0xFFFF
        self.ts[rid] += 3000
        self.up._on_rtp(packet, 0)


@pytest.fixture
async def twin() -> AsyncIterator[Twin]:
    pub_side = new_peer_connection()
    sub_side = new_peer_connection()
    transceiver = pub_side.addTransceiver("video", direction="recvonly")
    receiver: Any = transceiver.receiver
    context = MediaContext(cached_send_path=True)
    up = UpTrack(receiver, kind="video", mid="0", track_sid="TR_v", context=context)
    exts = [
        RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
        RTCRtpHeaderExtensionParameters(id=10, uri=URI_RID),
    ]
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8], headerExtensions=exts, muxId="0"))
    down = DownTrack.attach(sub_side, up, stream_id="PA_p|TR_v", track_id="TR_v", context=context)
    sender: Any = down.transceiver.sender
    send_exts = [
        RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
        RTCRtpHeaderExtensionParameters(id=3, uri=URI_ABS_SEND_TIME),
    ]
    await sender.send(RTCRtpSendParameters(codecs=[VP8, RTX], headerExtensions=send_exts, muxId="3"))
    down._writer = CheckedWriter({URI_MID: 4, URI_ABS_SEND_TIME: 3}, "3")
    twin = Twin(up, down, sender.transport)
    try:
        yield twin
    finally:
        for transport in (sender.transport, twin.twin):
            transport._set_state(State.CLOSED)
        down.close()
        up.close()
        await pub_side.close()
        await sub_side.close()


async def test_cached_path_puts_the_reference_bytes_on_the_wire(twin: Twin) -> None:
    t = twin
    path = SendPath.of(t.down._transport)  # type: ignore[arg-type]
    t.feed("q", key=True)
    for _ in range(5):
        t.feed("q")
    assert path.resolved
    t.feed("h")  # a better layer, mid-frame: q goes on until h's keyframe
    t.feed("q")
    t.feed("h", key=True)
    for _ in range(4):
        t.feed("h")
        t.feed("q")
    t.feed("f", key=True)  # f's sequence numbers wrap through 0 while it is forwarded
    for _ in range(8):
        t.feed("f")
    assert t.down.current_layer == "f"
    out_seqs = [int.from_bytes(p[2:4], "big") for p in t.plain if not is_rtcp(p)]
    assert t.down.answer_nack(out_seqs[2:6] + out_seqs[-3:]) == 7  # as RTX (own SSRC and sequence)
    assert t.down.send_padding(200, 3) > 0  # probes: padding-only RTX
    assert t.down.send_sender_report()  # RTCP: the reference path, on both wires
    t.feed("f")

    fast = [data for data, _ in t.fast_wire.sent]
    reference = [data for data, _ in t.reference_wire.sent]
    assert len(fast) == len(t.plain) >= 30
    assert fast == reference
    receiver = _receiver()
    assert [_decrypt(receiver, data) for data in fast] == t.plain
    kinds = {(p[1] & 0x7F) for p in t.plain if not is_rtcp(p)}
    assert kinds == {96, 97}  # media and RTX/padding
    assert any(p[1] == 200 for p in t.plain)  # the sender report
    assert {addr for _, addr in t.fast_wire.sent} == {("127.0.0.1", 5000)}
    assert path.resolutions == 1
    writer = t.down._writer
    assert isinstance(writer, CheckedWriter) and writer.writes == len([p for p in t.plain if not is_rtcp(p)])


# ---- when the cache is dropped


@pytest.fixture
async def wired() -> AsyncIterator[tuple[RTCDtlsTransport, Wire]]:
    dtls, wire = _dtls(), Wire()
    _connect(dtls, wire)
    try:
        yield dtls, wire
    finally:
        dtls._set_state(State.CLOSED)


async def test_a_new_selected_pair_a_dtls_state_change_and_close_drop_the_cache(
    wired: tuple[RTCDtlsTransport, Wire],
) -> None:
    dtls, wire = wired
    path = SendPath.of(dtls)
    assert SendPath.of(dtls) is path
    assert path.send(_rtp(1)) and path.resolved and wire.sent[-1][1] == ("127.0.0.1", 5000)

    connection: Any = dtls.transport._connection
    other = Wire()
    connection._nominated[1] = _pair(
        connection, _stun(connection, other), 6000
    )  # the remote nominated another
    assert not path.resolved
    assert path.send(_rtp(2)) and path.resolved and other.sent[-1][1] == ("127.0.0.1", 6000)
    assert path.resolutions == 2

    dtls._set_state(State.FAILED)
    assert not path.resolved
    assert not path.send(_rtp(3))  # not connected: the reference says no
    dtls._set_state(State.CONNECTED)
    assert path.send(_rtp(4)) and path.resolved

    connection._nominated.clear()  # consent expired: aioice closes the connection
    assert not path.resolved
    assert not path.send(_rtp(5))
    assert len(other.sent) == 2


async def test_an_ice_restart_moves_the_cache_to_the_new_connection(
    wired: tuple[RTCDtlsTransport, Wire],
) -> None:
    dtls, wire = wired
    path = SendPath.of(dtls)
    assert path.send(_rtp(1)) and path.resolved
    ice: Any = dtls.transport
    old = ice._connection
    new = aioice.ice.Connection(ice_controlling=False)
    after = Wire()
    new._nominated[1] = _pair(new, _stun(new, after), 7000)
    ice._connection = new  # what ice_restart._swap does, then:
    send_path.invalidate_ice(ice)
    assert not path.resolved
    assert path.send(_rtp(2)) and after.sent[-1][1] == ("127.0.0.1", 7000)
    old._nominated.clear()  # the old connection closes: no longer watched
    assert path.resolved
    receiver = _receiver()
    assert _decrypt(receiver, wire.sent[0][0]) == _rtp(1) and _decrypt(receiver, after.sent[0][0]) == _rtp(2)


async def test_a_relayed_pair_and_rtcp_use_the_reference_path(wired: tuple[RTCDtlsTransport, Wire]) -> None:
    dtls, wire = wired
    connection: Any = dtls.transport._connection
    relay = Relay()
    connection._nominated[1] = _pair(connection, relay, 3478)
    path = SendPath.of(dtls)
    assert path.send(_rtp(1))
    assert not path.resolved  # TURN: aioice's coroutine send, as before
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(relay.sent) == 1 and _decrypt(_receiver(), relay.sent[0]) == _rtp(1)
    assert wire.sent == []

    connection._nominated[1] = _pair(connection, _stun(connection, wire), 5000)
    sr = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert path.send(sr) and path.send(_rtp(2)) and path.resolved
    receiver = _receiver()
    assert [_decrypt(receiver, data) for data, _ in wire.sent] == [sr, _rtp(2)]


async def test_an_srtp_error_is_raised_as_by_the_reference(wired: tuple[RTCDtlsTransport, Wire]) -> None:
    dtls, wire = wired
    path = SendPath.of(dtls)
    assert path.send(_rtp(40000))
    assert path.resolved
    with pytest.raises(pylibsrtp.Error):
        path.send(_rtp(39000))  # index too old for the sender's replay window
    assert path.send(_rtp(40001)) and len(wire.sent) == 2
    with pytest.raises(ValueError):
        path.send(_rtp(40002, size=1500))  # too long for the session's buffer: the reference's error
