"""Fail loudly when an aiortc/aioice upgrade changes an internal that ``media/ice_restart.py`` relies on
(the loopback behaviour is in ``test_ice_restart_loopback.py``)."""

from __future__ import annotations

import inspect
from typing import Any

import aioice
import aioice.ice
import aiortc.rtcpeerconnection
import pytest
from aiortc import RTCPeerConnection, sdp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport, candidate_to_aioice

pytestmark = pytest.mark.unit


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _src(fn: Any) -> str:
    return inspect.getsource(fn)


# ---------------------------------------------------------------------------------------------------
# pinning: every aiortc/aioice internal ice_restart.py relies on


def test_pinned_aiortc_ice_transport_internals() -> None:
    # the attributes we replace per instance, and the private state we drive
    init = _src(RTCIceTransport.__init__)
    assert "self._connection = gatherer._connection" in init
    assert "self._recv = self._connection.recv" in init
    assert "self._send = self._connection.send" in init
    assert "self.__monitor_task" in init and "self.__start" in init
    assert _params(RTCIceTransport.addRemoteCandidate) == ["self", "candidate"]
    assert "self._connection.add_remote_candidate" in _src(RTCIceTransport.addRemoteCandidate)
    assert "self.__iceGatherer._remote_candidates_end" in _src(RTCIceTransport.addRemoteCandidate)
    assert _params(RTCIceTransport.stop) == ["self"]
    stop = _src(RTCIceTransport.stop)
    assert "await self._connection.close()" in stop and "await self.__monitor_task" in stop
    start = _src(RTCIceTransport.start)
    assert _params(RTCIceTransport.start) == ["self", "remoteParameters"]
    assert "if self.__start is not None:" in start  # a second start() only waits for the first
    assert "self.__monitor_task = asyncio.ensure_future(self._monitor())" in start
    assert "await self._connection.connect()" in start and "self.__start.set()" in start
    monitor = _src(RTCIceTransport._monitor)
    assert "self._connection.get_event()" in monitor and 'self.__setState("failed")' in monitor
    assert _params(RTCIceTransport._RTCIceTransport__setState) == ["self", "state"]  # type: ignore[attr-defined]
    assert 'self.emit("statechange")' in _src(RTCIceTransport._RTCIceTransport__setState)  # type: ignore[attr-defined]
    # the gatherer's connection is what local descriptions are written from
    assert "self._connection.local_username" in _src(RTCIceGatherer.getLocalParameters)
    assert "self._connection.local_candidates" in _src(RTCIceGatherer.getLocalCandidates)
    assert "self._remote_candidates_end = False" in _src(RTCIceGatherer.__init__)
    assert _params(candidate_to_aioice) == ["x"]


def test_pinned_aiortc_peer_connection_and_dtls_internals() -> None:
    init = _src(RTCPeerConnection.__init__)
    assert "self.__iceTransports: set[RTCIceTransport] = set()" in init
    assert _params(RTCPeerConnection.setRemoteDescription) == ["self", "sessionDescription"]
    assert "iceTransport.addRemoteCandidate(candidate)" in _src(RTCPeerConnection.addIceCandidate)
    add = _src(aiortc.rtcpeerconnection.add_transport_description)
    assert "iceGatherer.getLocalParameters()" in add and "iceGatherer.getLocalCandidates()" in add
    connect = _src(RTCPeerConnection._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    assert "await iceTransport.start(" in connect
    # the DTLS transport reads and writes through the ICE transport's _recv/_send attributes
    recv_next = _src(RTCDtlsTransport._recv_next)
    assert "await self.transport._recv()" in recv_next
    # ice_restart._WAKE (first byte 0) is neither DTLS nor SRTP: the loop drops it and reads again
    assert "if first_byte > 19 and first_byte < 64:" in recv_next
    assert "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:" in recv_next
    assert "await self.transport._send(data)" in _src(RTCDtlsTransport._write_ssl)
    assert "await self.transport._send(data)" in _src(RTCDtlsTransport._send_rtp)
    run = _src(RTCDtlsTransport._RTCDtlsTransport__run)  # type: ignore[attr-defined]
    assert "except ConnectionError:" in run and "self._set_state(State.CLOSED)" in run
    desc = sdp.SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtcp-mux\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
    )
    assert desc.media[0].ice is not None and desc.media[0].ice.usernameFragment == "abcd"


def test_pinned_aioice_connection_internals() -> None:
    assert _params(aioice.Connection.__init__) == [
        "self",
        "ice_controlling",
        "components",
        "stun_server",
        "turn_server",
        "turn_username",
        "turn_password",
        "turn_ssl",
        "turn_transport",
        "use_ipv4",
        "use_ipv6",
        "transport_policy",
        "local_username",
        "local_password",
    ]
    init = _src(aioice.Connection.__init__)
    for attr in (
        "self._use_ipv4 = use_ipv4",
        "self._use_ipv6 = use_ipv6",
        "self._transport_policy = transport_policy",
        "self._nominated: dict[int, CandidatePair] = {}",
        "self.remote_username: str | None = None",
        "self.remote_password: str | None = None",
        "self.remote_is_lite = False",
        "self._query_consent_task",
    ):
        assert attr in init, attr
    assert _params(aioice.Connection.add_remote_candidate) == ["self", "remote_candidate"]
    assert _params(aioice.Connection.gather_candidates) == ["self"]
    assert _params(aioice.Connection.connect) == ["self"]
    assert _params(aioice.Connection.recv) == ["self"]
    assert _params(aioice.Connection.send) == ["self", "data"]
    assert _params(aioice.Connection.get_event) == ["self"]
    # close() wakes a pending recv() with ConnectionError and emits ConnectionClosed
    close = _src(aioice.Connection.close)
    assert "self._queue.put_nowait(None)" in close and "ConnectionClosed()" in close
    assert 'raise ConnectionError("Connection lost while receiving data")' in _src(aioice.Connection.recvfrom)
    # consent freshness starts in connect() and closes the connection when it expires
    assert "self._query_consent_task = asyncio.create_task(self.query_consent())" in _src(
        aioice.Connection.connect
    )
    assert "return await self.close()" in _src(aioice.Connection.query_consent)
    assert isinstance(aioice.ice.CONSENT_INTERVAL, int | float) and isinstance(
        aioice.ice.CONSENT_FAILURES, int
    )
