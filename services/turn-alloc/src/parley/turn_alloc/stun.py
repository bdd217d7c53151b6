"""A STUN Binding request (RFC 5389 §6, §7.2) sent to a TURN server to see that it answers.

Over UDP the request is one datagram; over TCP and TLS the message is framed by its own length
field (RFC 5389 §7.2.2). Only the header is checked: a Binding success with our transaction id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import struct

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
HEADER = struct.Struct("!HHI12s")


class ProbeFailed(Exception):
    """The server did not answer the Binding request with a success."""


def binding_request(txid: bytes) -> bytes:
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, txid)


def check_binding_success(data: bytes, txid: bytes) -> None:
    if len(data) < HEADER.size:
        raise ProbeFailed(f"short STUN answer ({len(data)} bytes)")
    msg_type, _, cookie, answer_txid = HEADER.unpack_from(data)
    if cookie != MAGIC_COOKIE or answer_txid != txid:
        raise ProbeFailed("answer is not for our Binding request")
    if msg_type != BINDING_SUCCESS:
        raise ProbeFailed(f"STUN answer type 0x{msg_type:04x}, not a Binding success")


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def probe_udp(host: str, port: int, timeout: float) -> None:
    """One Binding request over UDP, resent once halfway (a lost datagram is not a dead server)."""
    txid = os.urandom(12)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Datagram, remote_addr=(host, port))
    try:
        request = binding_request(txid)
        transport.sendto(request)
        done, _ = await asyncio.wait({protocol.answer}, timeout=timeout / 2)
        if not done:
            transport.sendto(request)
        async with asyncio.timeout(timeout / 2 if not done else None):
            data = await protocol.answer
    except TimeoutError as exc:
        raise ProbeFailed(f"no STUN answer over UDP within {timeout}s") from exc
    except OSError as exc:
        raise ProbeFailed(f"UDP: {exc.strerror or exc}") from exc
    finally:
        transport.close()
    check_binding_success(data, txid)


async def probe_stream(host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> None:
    """One Binding request over TCP (or TLS when ``tls`` is given)."""
    txid = os.urandom(12)
    what = "TLS" if tls is not None else "TCP"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            writer.write(binding_request(txid))
            await writer.drain()
            header = await reader.readexactly(HEADER.size)
            (length,) = struct.unpack_from("!H", header, 2)
            await reader.readexactly(length)
    except TimeoutError as exc:
        raise ProbeFailed(f"no STUN answer over {what} within {timeout}s") from exc
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        raise ProbeFailed(f"{what}: {exc}") from exc
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    check_binding_success(header, txid)


def insecure_tls() -> ssl.SSLContext:
    """Probes check liveness, not identity: clients verify the certificate themselves."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
