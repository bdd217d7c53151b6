"""The SFU's media engine: RTP forwarding on aiortc without decoding (design notes: services/sfu/README.md).

Publishers get one REMB per peer connection from a loss-based estimate with a start value and a floor
(``bwe.py``, ``publisher_feedback.py``, knobs in ``settings.BweSettings``), not from aiortc's
delay-based estimator, which never exceeds ~1.5x the incoming rate and so kept browsers on the
quarter simulcast layer. The estimate's floor/start/cap come from ``rtc.bwe_min_bitrate`` /
``bwe_start_bitrate`` / ``bwe_max_bitrate``.

Nothing is process-global but aiortc's patching: ``configure(rtc)`` returns a ``MediaContext``
(``context.py``: settings, counters, the per-transport registry, output streams) that the node passes
to every ``UpTrack`` and ``DownTrack`` it builds.

A subscriber's output stream (sequence numbers, timestamps, VP8 PictureID/TL0PICIDX/KEYIDX, RTX
sequence numbers, SR counters) belongs to the aiortc sender (``out_stream.py``), so an m-line whose
DownTrack closed can carry a new DownTrack (``DownTrack.attach(..., transceiver=t)``) after it was
negotiated inactive once. NACKs are answered as RTX (RFC 4588) where the subscriber negotiated RTX,
and for audio only where it negotiated ``nack`` for the audio codec.

Layer selection is per down track (``forwarder.py`` + ``videolayerselector/``), limited by the
subscriber's request and by its transport's stream allocator (``congestion/``: transport-wide-cc
feedback, a GCC-style estimator, allocation and probing). ICE restarts keep the DTLS session
(``ice_restart.py``). The seams are in ``interfaces.py``.

An ``RtpTap`` (``tap.py``) is a sink of an up track that sends a plain-RTP copy of it over UDP to an
egress worker: its own forwarder pinned to the top layer, RTCP read back on its socket.
"""

from parley.sfu.media.context import MediaContext
from parley.sfu.media.down_track import DownTrack
from parley.sfu.media.engine import configure, new_peer_connection, pc_closing
from parley.sfu.media.errors import IceRestartError, TapError
from parley.sfu.media.ice_restart import IceLink, ice_link, restart_ice
from parley.sfu.media.simulcast_sdp import offered_simulcast_layers, prepare_answer
from parley.sfu.media.stats import MediaRates, MediaStats
from parley.sfu.media.tap import RtpTap
from parley.sfu.media.up_track import UpTrack

__all__ = [
    "DownTrack",
    "IceLink",
    "IceRestartError",
    "MediaContext",
    "MediaRates",
    "MediaStats",
    "RtpTap",
    "TapError",
    "UpTrack",
    "configure",
    "ice_link",
    "new_peer_connection",
    "offered_simulcast_layers",
    "pc_closing",
    "prepare_answer",
    "restart_ice",
]
