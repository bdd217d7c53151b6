"""Per-subscriber rewriting of the VP8 payload descriptor (RFC 7741 §4.2).

Simulcast layers are independent encoder instances: each numbers its pictures (PictureID, 7 or 15
bits), its base-layer pictures (TL0PICIDX, 8 bits) and its key frames (KEYIDX, 5 bits) on its own.
Forwarded unchanged, a layer switch makes these jump, and a decoder's frame-reference logic (libwebrtc
uses PictureID and TL0PICIDX to find missing frames) then waits for or drops pictures. Like the
sequence numbers (``rtp_munger.py``), every field continues from the last value sent when a new
segment starts (``switch()``): layer switch, resume, a new DownTrack on a reused sender.

Only the descriptor's first bytes change, so :meth:`Vp8Munger.rewrite` returns the rewritten head
that replaces the start of the (shared, never mutated) payload.
"""

from __future__ import annotations

PID_MASK = 0x7FFF
TL0_MASK = 0xFF
KEYIDX_MASK = 0x1F


class Vp8Munger:
    __slots__ = (
        "_key_offset",
        "_key_rebase",
        "_last_key",
        "_last_pid",
        "_last_tl0",
        "_pid_offset",
        "_pid_rebase",
        "_tl0_offset",
        "_tl0_rebase",
    )

    def __init__(self) -> None:
        self._pid_offset = self._tl0_offset = self._key_offset = 0
        self._last_pid: int | None = None
        self._last_tl0: int | None = None
        self._last_key: int | None = None
        self._pid_rebase = self._tl0_rebase = self._key_rebase = True

    @property
    def last_picture_id(self) -> int | None:
        return self._last_pid

    @property
    def last_tl0picidx(self) -> int | None:
        return self._last_tl0

    def switch(self) -> None:
        """The next packet starts a new segment (from another source): continue every field from there."""
        self._pid_rebase = self._tl0_rebase = self._key_rebase = True

    def rewrite(self, payload: bytes, newest: bool) -> bytes:
        """The rewritten descriptor head for ``payload`` (empty: forward unchanged). ``newest``: this
        packet is the newest one sent so far (its values become the ones the next segment follows)."""
        n = len(payload)
        if n < 3 or not payload[0] & 0x80:  # no extension byte: nothing to rewrite
            return b""
        ext = payload[1]
        if not ext & 0xD0:  # neither I, L nor K
            return b""
        head = bytearray(payload[:6])
        pos = 2
        if ext & 0x80:  # I: PictureID, 15 bits if M else 7
            if head[pos] & 0x80:
                if n < pos + 2:
                    return b""
                value = ((head[pos] & 0x7F) << 8) | head[pos + 1]
                out = self._picture_id(value, newest)
                head[pos] = 0x80 | (out >> 8)
                head[pos + 1] = out & 0xFF
                pos += 2
            else:
                head[pos] = self._picture_id(head[pos], newest) & 0x7F
                pos += 1
        if ext & 0x40:  # L: TL0PICIDX
            if n <= pos:
                return b""
            head[pos] = self._tl0(head[pos], newest)
            pos += 1
        if ext & 0x30:  # T or K: TID | Y | KEYIDX
            if n <= pos:
                return b""
            if ext & 0x10:
                head[pos] = (head[pos] & 0xE0) | self._keyidx(head[pos] & KEYIDX_MASK, newest)
            pos += 1
        return bytes(head[:pos])

    def _picture_id(self, value: int, newest: bool) -> int:
        if self._pid_rebase:
            self._pid_rebase = False
            self._pid_offset = 0 if self._last_pid is None else (self._last_pid + 1 - value) & PID_MASK
            newest = True
        out = (value + self._pid_offset) & PID_MASK
        if newest:
            self._last_pid = out
        return out

    def _tl0(self, value: int, newest: bool) -> int:
        if self._tl0_rebase:
            self._tl0_rebase = False
            self._tl0_offset = 0 if self._last_tl0 is None else (self._last_tl0 + 1 - value) & TL0_MASK
            newest = True
        out = (value + self._tl0_offset) & TL0_MASK
        if newest:
            self._last_tl0 = out
        return out

    def _keyidx(self, value: int, newest: bool) -> int:
        if self._key_rebase:
            self._key_rebase = False
            self._key_offset = 0 if self._last_key is None else (self._last_key + 1 - value) & KEYIDX_MASK
            newest = True
        out = (value + self._key_offset) & KEYIDX_MASK
        if newest:
            self._last_key = out
        return out
