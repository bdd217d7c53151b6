"""Which received layer a down track forwards: one policy per codec family (LiveKit's
``pkg/sfu/videolayerselector``).

- :class:`SimulcastSelector`: every video track (simulcast VP8/H.264, one SSRC per spatial layer, rid
  q/h/f; a single-layer track is one layer): forwards one layer at a time, switching only on a
  keyframe of the target layer, and asks for that keyframe.
- :class:`NullSelector`: audio: forwards everything unless the limit is ``NO_LAYER``.

SVC (VP9/AV1 with the dependency descriptor extension) is not implemented: a VP9/AV1 track is
forwarded whole as a single layer (every spatial and temporal layer it carries), never thinned.
"""

from parley.sfu.media.videolayerselector.interfaces import Decision, LayerSelector
from parley.sfu.media.videolayerselector.null import NullSelector
from parley.sfu.media.videolayerselector.simulcast import SimulcastSelector

__all__ = ["Decision", "LayerSelector", "NullSelector", "SimulcastSelector"]
