"""LiveKit's update rules for a participant's name, metadata and attributes, in one place.

room-state applies them to its record and the SFU to what its clients see; one copy keeps the two
from ever disagreeing on what an UpdateParticipant (API) or UpdateParticipantMetadata (client) does.
"""

from __future__ import annotations

from collections.abc import Mapping

from livekit.protocol import models


def apply_fields(
    info: models.ParticipantInfo, *, name: str, metadata: str, attributes: Mapping[str, str]
) -> bool:
    """A non-empty name or metadata replaces; attributes merge and an empty value deletes the key.
    True when anything changed."""
    changed = False
    if name and name != info.name:
        info.name = name
        changed = True
    if metadata and metadata != info.metadata:
        info.metadata = metadata
        changed = True
    for key, value in attributes.items():
        if not value:
            if key in info.attributes:
                del info.attributes[key]
                changed = True
        elif info.attributes.get(key) != value:
            info.attributes[key] = value
            changed = True
    return changed
