"""Per-subscriber rewriting of sequence numbers and timestamps.

The output stream stays continuous (no sequence gaps, timestamps moving forward) across simulcast
layer switches, pauses and publisher SSRC changes: every ``switch()`` starts a new segment whose
first packet follows the last one sent.
"""

from __future__ import annotations

import random

SEQ_MASK = 0xFFFF
TS_MASK = 0xFFFFFFFF


class RtpMunger:
    __slots__ = (
        "_clock_rate",
        "_highest_in",
        "_last_out_seq",
        "_last_out_time",
        "_last_out_ts",
        "_rebase",
        "_segment_start",
        "_seq_offset",
        "_ts_offset",
    )

    def __init__(self, clock_rate: int, *, rng: random.Random | None = None) -> None:
        r = rng or random.Random()
        self._clock_rate = clock_rate
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_out_seq = r.randrange(0, 0x8000)
        self._last_out_ts = r.randrange(0, 1 << 32)
        self._last_out_time: float | None = None
        self._highest_in = 0
        self._segment_start = 0
        self._rebase = True

    @property
    def ts_offset(self) -> int:
        return self._ts_offset

    @property
    def last_out_ts(self) -> int:
        return self._last_out_ts

    @property
    def last_out_seq(self) -> int:
        return self._last_out_seq

    @property
    def last_out_time(self) -> float | None:
        return self._last_out_time

    @property
    def started(self) -> bool:
        return self._last_out_time is not None

    def switch(self) -> None:
        """The next packet comes from another source (layer switch, resume): start a new segment."""
        self._rebase = True

    def map(self, seq: int, ts: int, now: float) -> tuple[int, int] | None:
        """Output (seq, ts) for an input packet, or None if it belongs to an earlier segment."""
        if self._rebase:
            out_seq = (self._last_out_seq + 1) & SEQ_MASK
            if self._last_out_time is None:
                step = 1
            else:
                step = max(1, int((now - self._last_out_time) * self._clock_rate))
            out_ts = (self._last_out_ts + step) & TS_MASK
            self._seq_offset = (out_seq - seq) & SEQ_MASK
            self._ts_offset = (out_ts - ts) & TS_MASK
            self._highest_in = seq
            self._segment_start = seq
            self._rebase = False
            newer = True
        else:
            diff = (seq - self._highest_in) & SEQ_MASK
            newer = 0 < diff < 0x8000
            if newer:
                self._highest_in = seq
            elif diff != 0 and (seq - self._segment_start) & SEQ_MASK >= 0x8000:
                return None
        out_seq = (seq + self._seq_offset) & SEQ_MASK
        out_ts = (ts + self._ts_offset) & TS_MASK
        if newer:
            self._last_out_seq = out_seq
            self._last_out_ts = out_ts
            self._last_out_time = now
        return out_seq, out_ts

    def drop(self, seq: int) -> None:
        """``seq`` (the next packet in order) is not forwarded: close the gap it would leave."""
        if not self._rebase and (seq - self._highest_in) & SEQ_MASK == 1:
            self._highest_in = seq
            self._seq_offset = (self._seq_offset - 1) & SEQ_MASK
