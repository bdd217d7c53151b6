"""Serialize a forwarded RTP packet with the subscriber's header fields and header extensions.

The received packet is never mutated (it is shared by every subscriber and the NACK cache). Only the
extensions a subscriber needs are written, with the ids it negotiated: ``sdes:mid`` (its m-line),
``ssrc-audio-level`` (passed through), ``abs-send-time`` (our send time, for its REMB estimator) and,
when the subscriber negotiated it, transport-wide-cc (the sequence number of our send-side estimator,
``congestion.SubscriberCongestion.on_rtp_sent``). Simulcast ``rid``/``rrid`` never reach subscribers.
"""

from __future__ import annotations

import struct
import time

from aiortc.rtp import RtpPacket, pack_header_extensions

from parley.sfu.media.aiortc_internals import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID, URI_TWCC

_HEADER = struct.Struct("!BBHLL")
_EXT_HEADER = struct.Struct("!HH")
_OSN = struct.Struct("!H")
_NTP_UNIX_OFFSET = 2208988800
_Layout = tuple[struct.Struct, int, tuple[int | bytes, ...]]
"""(header struct, first byte, the fixed values after the SSRC) of one extension combination."""


class RtpWriter:
    """Writes the subscriber's packets. One-byte extension headers without CSRCs (what every
    subscriber negotiates in practice) take :meth:`write`'s fast layout: the whole header, extensions
    and padding in one precomputed ``struct`` per combination of present extensions; anything else,
    and :meth:`write_reference` always, builds it piece by piece. Both give the same bytes
    (``tests/media/test_rtp_writer.py``)."""

    __slots__ = (
        "_ast_id",
        "_audio_id",
        "_layouts",
        "_mid",
        "_mid_elem",
        "_mid_id",
        "_one_byte",
        "_twcc_id",
    )

    def __init__(self, extension_ids: dict[str, int], mid: str | None) -> None:
        self._mid_id = extension_ids.get(URI_MID, 0) if mid else 0
        self._mid = (mid or "").encode()
        self._audio_id = extension_ids.get(URI_AUDIO_LEVEL, 0)
        self._ast_id = extension_ids.get(URI_ABS_SEND_TIME, 0)
        self._twcc_id = extension_ids.get(URI_TWCC, 0)
        ids = [i for i in (self._mid_id, self._audio_id, self._ast_id, self._twcc_id) if i]
        self._one_byte = all(1 <= i <= 14 for i in ids) and (not self._mid_id or len(self._mid) <= 16)
        self._mid_elem = b""
        if self._mid_id and self._one_byte:
            self._mid_elem = bytes([(self._mid_id << 4) | (len(self._mid) - 1)]) + self._mid
        self._layouts = self._one_byte_layouts() if self._one_byte else None

    @property
    def twcc_enabled(self) -> bool:
        """The subscriber negotiated transport-wide-cc: pass ``twcc_seq`` to :meth:`write`."""
        return self._twcc_id != 0

    def write(
        self,
        packet: RtpPacket,
        *,
        payload_type: int,
        seq: int,
        ts: int,
        ssrc: int,
        wall_now: float | None = None,
        head: bytes = b"",
        osn: int | None = None,
        twcc_seq: int | None = None,
    ) -> bytes:
        """The packet as the subscriber gets it. ``head`` replaces the payload's first bytes (a
        rewritten VP8 descriptor); ``osn`` makes it an RTX packet (RFC 4588 §4: the original sequence
        number before the payload; ``payload_type``/``seq``/``ssrc`` are then the RTX stream's);
        ``twcc_seq`` is the transport-wide sequence number (written only when :attr:`twcc_enabled`)."""
        layouts = self._layouts
        if layouts is None or packet.csrc:
            return self.write_reference(
                packet,
                payload_type=payload_type,
                seq=seq,
                ts=ts,
                ssrc=ssrc,
                wall_now=wall_now,
                head=head,
                osn=osn,
                twcc_seq=twcc_seq,
            )
        audio = packet.extensions.audio_level if self._audio_id else None
        twcc = twcc_seq if self._twcc_id else None
        layout, first, prefix = layouts[(audio is not None) | ((twcc is not None) << 1)]
        values: list[int | bytes] = [first, (packet.marker << 7) | payload_type, seq, ts, ssrc, *prefix]
        if audio is not None:
            values += (self._audio_id << 4, (0x80 if audio[0] else 0) | (audio[1] & 0x7F))
        if self._ast_id:
            now = time.time() if wall_now is None else wall_now
            values.append(
                ((self._ast_id << 4) | 2) << 24 | (int((now + _NTP_UNIX_OFFSET) * 262144) & 0xFFFFFF)
            )
        if twcc is not None:
            values += ((self._twcc_id << 4) | 1, twcc & 0xFFFF)
        data = layout.pack(*values)
        if osn is not None:
            data += _OSN.pack(osn)
        if head:
            return data + head + packet.payload[len(head) :]
        return data + packet.payload

    def write_reference(
        self,
        packet: RtpPacket,
        *,
        payload_type: int,
        seq: int,
        ts: int,
        ssrc: int,
        wall_now: float | None = None,
        head: bytes = b"",
        osn: int | None = None,
        twcc_seq: int | None = None,
    ) -> bytes:
        """:meth:`write`, built element by element (any extension ids, CSRCs)."""
        ext = self._extensions(packet, time.time() if wall_now is None else wall_now, twcc_seq)
        csrc = packet.csrc
        first = 0x80 | len(csrc) | (0x10 if ext else 0)
        data = _HEADER.pack(first, (packet.marker << 7) | payload_type, seq, ts, ssrc)
        for c in csrc:
            data += struct.pack("!L", c)
        data += ext
        if osn is not None:
            data += _OSN.pack(osn)
        if head:
            return data + head + packet.payload[len(head) :]
        return data + packet.payload

    def _one_byte_layouts(self) -> list[_Layout]:
        """By (audio level present) | (transport-wide seq present) << 1: the header's struct (RFC 3550
        header, RFC 8285 one-byte extension block and its padding), first byte and fixed values."""
        layouts: list[_Layout] = []
        for index in range(4):
            audio, twcc = bool(self._audio_id and index & 1), bool(self._twcc_id and index & 2)
            fields = "".join(
                (
                    f"{len(self._mid_elem)}s" if self._mid_elem else "",
                    "BB" if audio else "",
                    "L" if self._ast_id else "",
                    "BH" if twcc else "",
                )
            )
            size = struct.calcsize("!" + fields)
            if not size:
                layouts.append((_HEADER, 0x80, ()))
                continue
            pad = -size % 4
            prefix: tuple[int | bytes, ...] = (0xBEDE, (size + pad) >> 2)
            if self._mid_elem:
                prefix += (self._mid_elem,)
            layouts.append((struct.Struct(f"!BBHLLHH{fields}{pad}x"), 0x90, prefix))
        return layouts

    def _extensions(self, packet: RtpPacket, wall_now: float, twcc_seq: int | None) -> bytes:
        audio = packet.extensions.audio_level if self._audio_id else None
        ast = int((wall_now + _NTP_UNIX_OFFSET) * 262144) & 0xFFFFFF if self._ast_id else None
        twcc = twcc_seq if self._twcc_id else None
        if self._one_byte:
            body = self._mid_elem
            if audio is not None:
                body += bytes([self._audio_id << 4, (0x80 if audio[0] else 0) | (audio[1] & 0x7F)])
            if ast is not None:
                body += bytes([(self._ast_id << 4) | 2]) + ast.to_bytes(3, "big")
            if twcc is not None:
                body += bytes([(self._twcc_id << 4) | 1]) + _OSN.pack(twcc & 0xFFFF)
            if not body:
                return b""
            body += b"\x00" * (-len(body) % 4)
            return _EXT_HEADER.pack(0xBEDE, len(body) >> 2) + body
        elements: list[tuple[int, bytes]] = []
        if self._mid_id:
            elements.append((self._mid_id, self._mid))
        if audio is not None:
            elements.append((self._audio_id, bytes([(0x80 if audio[0] else 0) | (audio[1] & 0x7F)])))
        if ast is not None:
            elements.append((self._ast_id, ast.to_bytes(3, "big")))
        if twcc is not None:
            elements.append((self._twcc_id, _OSN.pack(twcc & 0xFFFF)))
        if not elements:
            return b""
        profile, value = pack_header_extensions(elements)
        return _EXT_HEADER.pack(profile, len(value) >> 2) + value
