"""LiveKit's participant update rules."""

from __future__ import annotations

import pytest
from livekit.protocol import models

from parley.protocol.participant_fields import apply_fields

pytestmark = pytest.mark.unit


def test_non_empty_values_replace_and_attributes_merge() -> None:
    info = models.ParticipantInfo(name="a", metadata="m", attributes={"k": "1", "gone": "x"})
    assert apply_fields(info, name="", metadata="", attributes={"k": "2", "gone": "", "new": "3"})
    assert (info.name, info.metadata, dict(info.attributes)) == ("a", "m", {"k": "2", "new": "3"})
    assert apply_fields(info, name="b", metadata="n", attributes={})
    assert (info.name, info.metadata) == ("b", "n")


def test_a_write_that_changes_nothing_says_so() -> None:
    info = models.ParticipantInfo(name="a", metadata="m", attributes={"k": "1"})
    assert not apply_fields(info, name="a", metadata="", attributes={"k": "1", "absent": ""})
    assert not apply_fields(info, name="", metadata="m", attributes={})
