"""The media path of a track recording: RTP → frames → container, never decoded or re-encoded.

``reorder.py`` (sequence order, NACK list), ``depacketize.py`` (Opus, VP8 RFC 7741, H.264
RFC 6184), ``recorder.py`` (PyAV muxer: Opus → OGG, VP8 → WebM, H.264 → fragmented MP4),
``codecs.py`` (the codec and its container), ``probe.py`` (what a lost part's file holds).
"""

from parley.egress_worker.media.codecs import TrackCodec, container_for
from parley.egress_worker.media.errors import MediaError, MuxError, UnsupportedCodec
from parley.egress_worker.media.probe import recorded_duration
from parley.egress_worker.media.recorder import RecordingSummary, TrackRecorder

__all__ = [
    "MediaError",
    "MuxError",
    "RecordingSummary",
    "TrackCodec",
    "TrackRecorder",
    "UnsupportedCodec",
    "container_for",
    "recorded_duration",
]
