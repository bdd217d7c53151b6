"""ICE restart for aiortc peer connections (aiortc 1.16.0 / aioice 0.13.0 have none).

This is an adapter module that touches aiortc/aioice internals, like ``aiortc_internals.py`` (kept
separate so the two can change independently); every internal used here is pinned by
``tests/media/test_ice_restart.py``.

An ICE restart swaps the aioice ``Connection`` under an existing ``RTCIceTransport``: the
``RTCDtlsTransport`` on top (its DTLS session, SRTP contexts, SCTP association), the transceivers and
the data channels are untouched, so there is no new DTLS handshake and no media renegotiation.

- Remote restart: :func:`install` wraps the peer connection's ``setRemoteDescription``. An offer (or
  the answer to our restart offer) whose ``a=ice-ufrag``/``a=ice-pwd`` differ from the ones in use
  makes a fresh ``Connection`` (new local credentials; host candidates gathered again through the
  engine's host-address and port-range patches) before aiortc applies the description, so the
  answer carries the new credentials and candidates; remote candidates (in the SDP and trickled
  later through ``addIceCandidate``) go to the new connection, whose checks start once the
  description is applied.
- Local restart: :func:`restart_ice` makes the fresh connection now, so the next ``createOffer()``
  carries new credentials; the remote answer's credentials are applied by ``setRemoteDescription``.
- Until the new connection has a nominated pair, traffic keeps using the old one (a live restart
  loses nothing). Then the new one becomes the transport's connection, the old one is closed,
  consent freshness runs on the new one (aioice starts it in ``connect()``).
- The DTLS receive loop reads ``RTCIceTransport._recv``: it is replaced so that the swap, and a
  lost connection (consent expired, socket gone) after the transport was connected, wait for the
  next connection instead of ending the loop (which would close the DTLS transport and then the
  peer connection). ``_send`` drops datagrams while there is no usable connection, like a lossy
  network, instead of raising (aiortc's senders stop for good on ``ConnectionError``).
  A DTLS close_notify from the remote still closes everything as before.
- :class:`IceLink` (``ice_link(pc)``) reports a browser-like ICE state for the session layer
  (``connected`` / ``disconnected`` / ``checking`` / ``failed`` / ``closed``), a ``generation``
  counting completed restarts, change callbacks and :meth:`IceLink.wait_connected`. The SFU never
  tears a peer connection down by itself: on ``disconnected``/``failed`` the session layer waits
  for a restart within its window, then closes the peer connection if none came.

aiortc's own ``RTCIceTransport.state`` is kept meaningful: it goes to ``failed`` when a connection
is lost by consent expiry (as aiortc does), back to ``checking`` when a restart begins from
``failed``, and to ``completed`` when the new connection is up; a restart of a working transport
never leaves ``completed``. A restart during the initial checks works (DTLS then makes its first
handshake over the new connection) but aiortc briefly reports ``failed`` when the first connection
is closed. Not supported: peer connections with more than one live ICE transport (the SFU bundles
everything), restarts before aiortc started ICE on the transport (:class:`IceRestartError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

import aioice
from aiortc import RTCPeerConnection, RTCSessionDescription, sdp
from aiortc.rtcicetransport import RTCIceCandidate, RTCIceParameters, RTCIceTransport, candidate_to_aioice

from parley.observability import TaskSet, get_logger, wait_event
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media import send_path
from parley.sfu.media.errors import IceRestartError

__all__ = ["IceLink", "IceRestartError", "LinkState", "ice_link", "install", "restart_ice"]

LinkState = Literal["new", "checking", "connected", "disconnected", "failed", "closed"]
StateListener = Callable[["IceLink"], None]

_log = get_logger("parley.sfu.media.ice_restart")
_LINK = "_parley_ice_link"
_CONTROLLER = "_parley_ice_restart"
_WAKE = bytes(1)
"""Put in a replaced connection's receive queue: first byte 0 is neither DTLS nor SRTP, so aiortc's
DTLS receive loop drops it and reads again (from the new connection)."""


# ---------------------------------------------------------------------------------------------------
# public API


def install(pc: RTCPeerConnection) -> IceLink:
    """Make ``pc`` restartable (idempotent): remote restarts are detected in ``setRemoteDescription``.
    ``new_peer_connection()`` calls this for every SFU peer connection."""
    link: IceLink | None = getattr(pc, _LINK, None)
    if link is not None:
        return link
    link = IceLink(pc)
    setattr(pc, _LINK, link)
    link._controller()  # transports that exist already
    original = pc.setRemoteDescription

    async def set_remote_description(description: RTCSessionDescription) -> None:
        await link._set_remote_description(original, description)

    setattr(pc, "setRemoteDescription", set_remote_description)  # noqa: B010
    return link


def ice_link(pc: RTCPeerConnection) -> IceLink:
    """The restart state of ``pc`` (installs the adapter if needed)."""
    return install(pc)


async def restart_ice(pc: RTCPeerConnection) -> None:
    """Local ICE restart (a server-offered peer connection): new local credentials and candidates
    for the next ``createOffer()``; the answer's credentials are applied by ``setRemoteDescription``.

    Raises :class:`IceRestartError` when the peer connection has not started ICE yet."""
    link = install(pc)
    controller = link._controller()
    if controller is None or not controller.started():
        raise IceRestartError("ICE has not started on this peer connection")
    await controller.begin()


# ---------------------------------------------------------------------------------------------------
# per peer connection


class IceLink:
    """Browser-like ICE state of one peer connection, across restarts."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self._pc = pc
        self._controllers: dict[RTCIceTransport, _Restarter] = {}
        self._listeners: list[StateListener] = []
        self._changed = asyncio.Event()

    @property
    def state(self) -> LinkState:
        """``connected`` while a connection carries traffic (also during a restart of a working
        transport); ``checking`` while a restart's checks run with no working connection;
        ``disconnected`` after the connection was lost and no restart has begun; ``failed`` when
        ICE (initial or a restart's) failed; ``closed`` once the transport stopped."""
        controller = self._controller()
        if controller is None:
            return "closed" if self._controllers else "new"
        return controller.state()

    @property
    def generation(self) -> int:
        """Completed ICE restarts (0 until the first one)."""
        controller = self._controller()
        return controller.generation if controller is not None else 0

    @property
    def restarting(self) -> bool:
        """A restart began and its connection is not up yet."""
        controller = self._controller()
        return controller is not None and controller.pending is not None

    def on_state_change(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(link)`` (synchronously; it must not raise) whenever ``state`` or
        ``generation`` may have changed; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def wait_connected(self, timeout: float | None = None, *, min_generation: int = 0) -> bool:
        """Wait until ``state == "connected"`` with ``generation >= min_generation`` (pass
        ``link.generation + 1`` to wait for the next completed restart); False on timeout or close."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            state = self.state
            if state == "connected" and self.generation >= min_generation:
                return True
            if state == "closed":
                return False
            changed = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            if not await wait_event(changed, remaining):
                return False

    # -- internals --------------------------------------------------------------------------------

    def _controller(self) -> _Restarter | None:
        """The controller of the peer connection's live ICE transport (created on first sight)."""
        live = [t for t in _ice_transports(self._pc) if t.state != "closed"]
        for transport in live:
            if transport not in self._controllers:
                self._controllers[transport] = _Restarter(transport, self._notify)
        if not live:
            return None
        return self._controllers[live[0]]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                _log.exception("ICE state listener failed")

    async def _set_remote_description(
        self, original: Callable[[RTCSessionDescription], Any], description: RTCSessionDescription
    ) -> None:
        parsed = sdp.SessionDescription.parse(description.sdp)
        remote = next((m.ice for m in parsed.media if m.ice is not None), None)
        live = [t for t in _ice_transports(self._pc) if t.state != "closed"]
        controller = self._controller()
        action = "none"
        if remote is not None and controller is not None:
            action = controller.classify(remote)
            if action != "none" and len(live) > 1:
                _log.warning("ICE restart ignored: the peer connection has several ICE transports")
                action = "none"
        began_here = False
        if action == "restart" and controller is not None:
            await controller.begin()
            began_here = True
        try:
            await original(description)
        except BaseException:
            if began_here and controller is not None:
                await controller.abort()
            raise
        self._controller()  # attach transports created by this description
        if action != "none" and controller is not None and remote is not None:
            controller.start_checks(remote)


def _ice_transports(pc: RTCPeerConnection) -> list[RTCIceTransport]:
    transports: set[RTCIceTransport] = getattr(pc, "_RTCPeerConnection__iceTransports")  # noqa: B009
    return list(transports)


# ---------------------------------------------------------------------------------------------------
# per ICE transport


class _Restarter:
    """Owns the aioice connections of one ``RTCIceTransport``: ``active`` carries traffic,
    ``pending`` is a restart's connection until its checks succeed."""

    def __init__(self, ice: RTCIceTransport, notify: Callable[[], None]) -> None:
        self.ice = ice
        self.active: Any = ice._connection
        self.pending: Any = None
        self.generation = 0
        self.lost = False
        self.stopped = False
        self.failed = False
        self.ever_connected = ice.state == "completed"
        self._notify = notify
        self._wakeup = asyncio.Event()
        self._tasks = TaskSet("parley.sfu.media.ice_restart")
        self._checks: asyncio.Task[None] | None = None
        self._original_stop = ice.stop
        i: Any = ice
        i._recv = self._recv
        i._send = self._send
        i.addRemoteCandidate = self._add_remote_candidate
        i.stop = self._stop
        setattr(ice, _CONTROLLER, self)
        ice.on("statechange", self._on_statechange)

    # -- state --------------------------------------------------------------------------------------

    def started(self) -> bool:
        """aiortc's ``RTCIceTransport.start()`` ran (remote credentials were applied once)."""
        return getattr(self.ice, "_RTCIceTransport__start", None) is not None and not self.stopped

    def alive(self) -> bool:
        return not self.lost and bool(self.active._nominated)

    def state(self) -> LinkState:
        if self.stopped or self.ice.state == "closed":
            return "closed"
        if self.alive():
            return "connected"
        if self.pending is not None:
            return "checking"
        if self.failed:
            return "failed"
        if self.ever_connected:
            return "disconnected"  # also when aiortc marked the transport failed (consent expiry)
        if self.ice.state == "failed":
            return "failed"
        return "checking" if self.ice.state == "checking" else "new"

    def restartable(self) -> bool:
        return not self.stopped and (self.ever_connected or self.pending is not None)

    def classify(self, remote: RTCIceParameters) -> Literal["none", "apply", "restart"]:
        """What a remote description with these credentials means for this transport."""
        if not self.started():
            return "none"
        if self.pending is not None and self.pending.remote_username is None:
            return "apply"  # the answer to our restart offer
        current = self.pending if self.pending is not None else self.active
        if current.remote_username is None:
            return "none"
        if (remote.usernameFragment, remote.password) != (current.remote_username, current.remote_password):
            return "restart"
        return "none"

    def _on_statechange(self) -> None:
        if self.ice.state == "completed":
            self.ever_connected = True
        self._notify()

    def _set_ice_state(self, state: str) -> None:
        if self.ice.state not in (state, "closed"):
            self.ice._RTCIceTransport__setState(state)  # type: ignore[attr-defined]

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()
        self._notify()

    # -- restart ------------------------------------------------------------------------------------

    async def begin(self) -> None:
        """A fresh connection with new local credentials and gathered candidates: the local
        description (answer or offer) written from now on carries them."""
        old = self.active
        connection = aioice.Connection(
            ice_controlling=old.ice_controlling,
            components=1,
            stun_server=old.stun_server,
            turn_server=old.turn_server,
            turn_username=old.turn_username,
            turn_password=old.turn_password,
            turn_ssl=old.turn_ssl,
            turn_transport=old.turn_transport,
            use_ipv4=old._use_ipv4,
            use_ipv6=old._use_ipv6,
            transport_policy=old._transport_policy,
        )
        internals.inherit_scope(old, connection)
        await connection.gather_candidates()
        if self.stopped:
            await connection.close()
            raise IceRestartError("ICE transport stopped during the restart")
        await self.abort()
        self.pending = connection
        gatherer: Any = self.ice.iceGatherer
        gatherer._connection = connection
        gatherer._remote_candidates_end = False
        self.failed = False
        if self.ice.state == "failed":
            self._set_ice_state("checking")
        _log.info("ICE restart", local_ufrag=connection.local_username)
        self._wake()

    def start_checks(self, remote: RTCIceParameters) -> None:
        """Connectivity checks of the pending connection with the remote's new credentials."""
        connection = self.pending
        if connection is None or self._checks is not None:
            return
        connection.remote_username = remote.usernameFragment
        connection.remote_password = remote.password
        connection.remote_is_lite = remote.iceLite
        self._checks = self._tasks.spawn(self._run_checks(connection), name="ice-restart-checks")

    async def abort(self) -> None:
        """Drop the pending restart (if any); the active connection stays."""
        connection, self.pending = self.pending, None
        checks, self._checks = self._checks, None
        if checks is not None and checks is not asyncio.current_task():
            checks.cancel()
            await asyncio.wait([checks])
        if connection is not None:
            gatherer: Any = self.ice.iceGatherer
            if gatherer._connection is connection:
                gatherer._connection = self.active
            await connection.close()
            self._wake()

    async def _run_checks(self, connection: Any) -> None:
        try:
            await connection.connect()
        except ConnectionError:
            if connection is self.pending:
                _log.info("ICE restart failed", local_ufrag=connection.local_username)
                self._checks = None
                self.pending = None
                self.failed = not self.alive()
                await connection.close()
                if self.failed:
                    self._set_ice_state("failed")
                self._wake()
            return
        if connection is self.pending and not self.stopped:
            await self._swap(connection)

    async def _swap(self, connection: Any) -> None:
        old = self.active
        ice: Any = self.ice
        self.pending = None
        self._checks = None
        self.active = connection
        ice._connection = connection
        ice.iceGatherer._connection = connection
        send_path.invalidate_ice(ice)  # the selected pair is the new connection's
        self.lost = False
        self.failed = False
        self.ever_connected = True
        self.generation += 1
        # aiortc's monitor of the old connection would mark the transport failed when we close it
        old_monitor: asyncio.Future[None] | None = ice._RTCIceTransport__monitor_task
        ice._RTCIceTransport__monitor_task = self._tasks.spawn(self._monitor(connection), name="ice-monitor")
        if old_monitor is not None and not old_monitor.done():
            old_monitor.cancel()
            await asyncio.wait([old_monitor])
        _log.info("ICE restarted", local_ufrag=connection.local_username, generation=self.generation)
        self._wake()  # a receive loop waiting for a connection goes on with this one
        start_done: asyncio.Event | None = ice._RTCIceTransport__start
        # a read of the old connection in flight (possibly aiortc's own recv, bound before we were
        # installed) gets a datagram the DTLS transport ignores instead of close()'s ConnectionError
        old._queue.put_nowait((_WAKE, 1))
        await old.close()
        if start_done is not None:
            await start_done.wait()  # restart before the first connection: aiortc's start() has returned
        self._set_ice_state("completed")
        self._notify()

    async def _monitor(self, connection: Any) -> None:
        """aiortc's ``RTCIceTransport._monitor`` for a connection we made: consent expiry fails it."""
        event = await connection.get_event()
        if isinstance(event, aioice.ConnectionClosed) and connection is self.active and not self.stopped:
            self._connection_lost(connection)
            self._set_ice_state("failed")

    def _connection_lost(self, connection: Any) -> None:
        if connection is self.active and not self.lost:
            self.lost = True
            _log.info("ICE connection lost; waiting for an ICE restart", restartable=self.restartable())
            self._wake()

    # -- the transport's data path (replaces RTCIceTransport._recv / _send) -------------------------

    async def _recv(self) -> bytes:
        while True:
            if self.stopped:
                raise ConnectionError("ICE transport stopped")
            connection = self.active
            if not self.lost:
                try:
                    data: bytes = await connection.recv()
                    if data is _WAKE:
                        continue
                    return data
                except ConnectionError:
                    if self.stopped:
                        raise
                    if connection is not self.active:
                        continue  # swapped during the read
                    if not self.restartable():
                        raise
                    self._connection_lost(connection)
                    continue
            if not self.restartable():
                raise ConnectionError("ICE connection lost")
            await self._wakeup.wait()

    async def _send(self, data: bytes) -> None:
        if not self.alive() and self.restartable():
            return  # no usable path now: dropped, as the network would
        try:
            await self.active.send(data)
        except ConnectionError:
            if not self.restartable():
                raise

    async def _add_remote_candidate(self, candidate: RTCIceCandidate | None) -> None:
        """``RTCIceTransport.addRemoteCandidate`` for the newest connection (pending or active)."""
        gatherer: Any = self.ice.iceGatherer
        if gatherer._remote_candidates_end:
            return
        connection = self.pending if self.pending is not None else self.active
        if candidate is None:
            gatherer._remote_candidates_end = True
            await connection.add_remote_candidate(None)
        else:
            await connection.add_remote_candidate(candidate_to_aioice(candidate))

    async def _stop(self) -> None:
        self.stopped = True
        self._wake()
        await self.abort()
        await self._original_stop()
        await self._tasks.aclose()
        self._notify()
