"""Which received layer a down track forwards: one policy per codec family (LiveKit's
``pkg/sfu/videolayerselector``).

- :class:`SimulcastSelector`: simulcast (VP8, H.264, one SSRC per spatial layer, rid q/h/f): forwards
  one layer at a time, switching only on a keyframe of the target layer, and asks for that keyframe.
- :class:`NullSelector`: a single-layer stream (audio, or video without simulcast on a codec the
  selector does not know): forwards everything unless the limit is ``NO_LAYER``.

SVC (VP9/AV1 with the dependency descriptor extension) is not implemented: aiortc negotiates neither
codec for forwarding here, and such tracks fall back to the null selector (every packet forwarded).
"""

from parley.sfu.media.videolayerselector.interfaces import Decision, LayerSelector
from parley.sfu.media.videolayerselector.null import NullSelector
from parley.sfu.media.videolayerselector.simulcast import SimulcastSelector

__all__ = ["Decision", "LayerSelector", "NullSelector", "SimulcastSelector"]
