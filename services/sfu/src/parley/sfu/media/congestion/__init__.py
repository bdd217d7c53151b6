"""Subscriber-side congestion control: transport-wide-cc send-side estimation, stream allocation and
probing, one :class:`SubscriberCongestion` per subscriber DTLS transport.

The DownTrack wiring (``media/down_track.py``):

- when the sender's transport is known (``_on_parameters``):
  ``self._cc = SubscriberCongestion.join(context, transport, self, video=self._video)`` (the
  controller lives in the media context's transport registry). A video down track is
  an :class:`~parley.sfu.media.interfaces.Allocatable`: the allocator calls ``set_allocation`` (only on
  change; ``NO_LAYER`` = paused for bandwidth) from its timer and ``send_padding`` while probing. An
  audio down track is not allocated; the allocator reserves ``layer_bitrates(now)[-1].bps`` for it
  (``AllocatorConfig.audio_bps`` while unmeasured).
- on close: ``self._cc.leave(self)`` (the last member out cancels the timers).
- for every RTP packet sent on the transport (media, RTX, padding), before writing it:
  ``seq = cc.on_rtp_sent(size, now, probe=is_padding)``, then ``writer.write(..., twcc_seq=seq)``, both
  only when ``writer.twcc_enabled`` (the subscriber negotiated transport-wide-cc). ``size`` is the
  packet's length; since the packet is written after the call, ``len(payload) + 40`` (RTP header and
  extensions) is exact enough: the estimator needs sizes to a few percent.

TWCC feedback (RTPFB FMT=15) and REMB arriving on the transport reach the controller by a tap on the
transport's RTCP (``aiortc_internals.tap_transport_rtcp``); ``estimate_bps`` is the current estimate.
Transport-wide-cc is negotiated only on m-lines where the SFU only sends (``aiortc_internals``).
"""

from __future__ import annotations

from parley.sfu.media.congestion.allocator import Allocation, StreamAllocator
from parley.sfu.media.congestion.config import (
    AllocatorConfig,
    CongestionConfig,
    EstimatorConfig,
    ProberConfig,
)
from parley.sfu.media.congestion.estimator import SendSideEstimator
from parley.sfu.media.congestion.prober import Prober
from parley.sfu.media.congestion.send_history import PacketResult, SendHistory
from parley.sfu.media.congestion.subscriber import SubscriberCongestion
from parley.sfu.media.congestion.twcc import Feedback, build_feedback, parse_feedback

__all__ = [
    "Allocation",
    "AllocatorConfig",
    "CongestionConfig",
    "EstimatorConfig",
    "Feedback",
    "PacketResult",
    "Prober",
    "ProberConfig",
    "SendHistory",
    "SendSideEstimator",
    "StreamAllocator",
    "SubscriberCongestion",
    "build_feedback",
    "parse_feedback",
]
