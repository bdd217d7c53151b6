"""The per-packet send of a subscriber transport, resolved once while ICE and DTLS are settled.

An adapter over aiortc/aioice/pylibsrtp internals (pinned like ``aiortc_internals.py``, checked by
``tests/media/test_send_path.py``). The reference path, ``aiortc_internals.send_rtp_sync``, walks per
packet: the DTLS state, ``_tx_srtp`` and pylibsrtp's ``Session.protect`` (a new ``int *``, type and
length checks, a copy into the session's buffer and one out), ``transport.transport._connection``,
``_nominated[1]``, the pair's protocol, its ``remote_addr`` (a property building a new tuple) and the
loop transport's ``sendto``. A :class:`SendPath` (one per DTLS transport, shared by its down tracks)
resolves all of it once into a closure: copy the packet into the SRTP session's own buffer,
``srtp_protect`` in place, the selected pair's loop transport ``sendto`` with the cached address.
(A direct ``socket.sendto`` on the pair's socket measured no faster than uvloop's transport, so the
loop's transport, with its buffering and error reporting, stays.) Same session, same buffer, same
libsrtp call as the reference: the bytes on the wire are the same (``tests/media/test_send_path.py``
compares both paths' output).

The cache is dropped whenever what it holds can change:

- the DTLS transport's ``statechange`` (connected, closed, failed);
- any change of the ICE connection's selected pairs: ``_nominated`` is swapped for a dict that tells
  its watchers (a new nomination, consent expiry and close clear or replace it);
- an ICE restart swapping the aioice connection (``ice_restart.py`` calls :func:`invalidate_ice`).

Until it is resolved again, and for what it does not cover, the reference path sends: RTCP, a
relayed (TURN) pair (aioice's send is a coroutine there), a packet too long for the session's buffer,
and an SRTP error (the reference raises it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aioice.ice
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from pylibsrtp import _binding

from parley.sfu.media import aiortc_internals as internals

Send = Callable[[bytes], bool]

_PATH = "_parley_send_path"
SRTP_MAX_TRAILER_LEN = 16 + 128
"""pylibsrtp's room for the auth tag and MKI after an RTP packet (its ``SRTP_MAX_TRAILER_LEN``)."""


class _WatchedPairs(dict[int, Any]):
    """aioice's ``Connection._nominated`` (component -> selected pair) telling watchers of changes."""

    __slots__ = ("watchers",)

    def __init__(self, pairs: dict[int, Any]) -> None:
        super().__init__(pairs)
        self.watchers: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for watcher in list(self.watchers):
            watcher()

    def __setitem__(self, key: int, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def pop(self, *args: Any) -> Any:
        value = super().pop(*args)
        self._changed()
        return value

    def popitem(self) -> tuple[int, Any]:
        item = super().popitem()
        self._changed()
        return item

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def setdefault(self, key: int, default: Any = None) -> Any:
        value = super().setdefault(key, default)
        self._changed()
        return value


def _watch_pairs(connection: Any, watcher: Callable[[], None]) -> None:
    pairs = connection._nominated
    if not isinstance(pairs, _WatchedPairs):
        pairs = connection._nominated = _WatchedPairs(pairs)
    if watcher not in pairs.watchers:
        pairs.watchers.append(watcher)


def _unwatch_pairs(connection: Any, watcher: Callable[[], None]) -> None:
    pairs = connection._nominated
    if isinstance(pairs, _WatchedPairs) and watcher in pairs.watchers:
        pairs.watchers.remove(watcher)


class SendPath:
    """Sends a subscriber transport's RTP (and, through the reference path, RTCP). Get it with
    :meth:`of`; ``send`` is what a down track calls per packet (synchronous, False when the transport
    cannot send)."""

    __slots__ = ("_connection", "_transport", "resolutions", "send")

    def __init__(self, transport: RTCDtlsTransport) -> None:
        self._transport = transport
        self._connection: Any = None
        """The aioice connection whose selected pairs we watch."""
        self.send: Send = self._resolve
        self.resolutions = 0
        """Times the cache was resolved (tests, debugging)."""
        transport.on("statechange", self.invalidate)
        setattr(transport.transport, _PATH, self)  # for invalidate_ice (one DTLS per ICE transport)

    @classmethod
    def of(cls, transport: RTCDtlsTransport) -> SendPath:
        """The transport's send path (one per DTLS transport)."""
        path: SendPath | None = getattr(transport, _PATH, None)
        if path is None:
            path = cls(transport)
            setattr(transport, _PATH, path)
        return path

    @property
    def resolved(self) -> bool:
        """The cached fast path sends now (not the reference path, nor a pending resolution)."""
        return self.send not in (self._resolve, self._reference)

    def invalidate(self) -> None:
        """Forget the resolved path: the next packet resolves it again."""
        self.send = self._resolve

    def _reference(self, data: bytes) -> bool:
        return internals.send_rtp_sync(self._transport, data)

    def _resolve(self, data: bytes) -> bool:
        """Resolve the path (fast, or the reference when it cannot be), then send ``data``."""
        self.resolutions += 1
        self.send = self._build() or self._reference
        return self.send(data)

    def _build(self) -> Send | None:
        transport: Any = self._transport
        if transport._state != State.CONNECTED:
            return None
        connection = transport.transport._connection
        if connection is not self._connection:
            if self._connection is not None:
                _unwatch_pairs(self._connection, self.invalidate)
            self._connection = connection
        _watch_pairs(connection, self.invalidate)
        pair = connection._nominated.get(1)
        if pair is None:
            return None
        protocol = pair.protocol
        if not isinstance(protocol, aioice.ice.StunProtocol):
            return None  # relayed: aioice's TURN send is a coroutine
        loop_transport = protocol.transport
        if loop_transport is None or loop_transport.is_closing():
            return None
        return _fast_send(transport._tx_srtp, loop_transport, pair.remote_addr, self._reference)


def _fast_send(session: Any, loop_transport: Any, addr: tuple[str, int], reference: Send) -> Send:
    """RTP: protect into the session's buffer, send from it. Anything else: ``reference``."""
    cdata = session._cdata  # pylibsrtp's own buffer, as its Session.protect uses it
    buffer = session._buffer
    srtp = session._srtp[0]
    protect = _binding.lib.srtp_protect
    length = _binding.ffi.new("int *")
    limit = len(buffer) - SRTP_MAX_TRAILER_LEN
    sendto = loop_transport.sendto
    addr = (addr[0], addr[1])

    def send(data: bytes, _session: Any = session) -> bool:  # the session owns ``srtp``: keep it
        n = len(data)
        if n > limit or n < 12 or 192 <= data[1] <= 208:
            return reference(data)  # RTCP or too long: as the reference does
        buffer[0:n] = data
        length[0] = n
        if protect(srtp, cdata, length):
            return reference(data)  # raises the session's error (the state did not move)
        sendto(buffer[0 : length[0]], addr)
        return True

    return send


def invalidate_ice(ice: Any) -> None:
    """The ICE transport ``ice`` swapped its aioice connection: drop the cached path of the DTLS
    transport over it."""
    path: SendPath | None = getattr(ice, _PATH, None)
    if path is not None:
        path.invalidate()
