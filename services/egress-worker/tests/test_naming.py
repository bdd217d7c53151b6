"""File names as LiveKit egress makes them (templates, defaults, extensions, parts)."""

from __future__ import annotations

import time

import pytest

from parley.egress_worker.naming import NameFields, file_name

pytestmark = pytest.mark.unit

AT = time.mktime((2026, 12, 2, 14, 30, 5, 0, 0, -1))
FIELDS = NameFields(room_name="standup", room_id="RM_1", track_id="TR_a", at=AT)


def test_placeholders_are_filled() -> None:
    assert file_name("{room_name}/{room_id}/{track_id}.ogg", FIELDS, ".ogg") == "standup/RM_1/TR_a.ogg"
    assert file_name("rec-{time}.ogg", FIELDS, ".ogg") == "rec-2026-12-02T143005.ogg"


@pytest.mark.parametrize("template", ["", "/", "   "])
def test_an_empty_path_is_track_id_and_time(template: str) -> None:
    assert file_name(template, FIELDS, ".webm") == "TR_a-2026-12-02T143005.webm"


def test_a_directory_gets_the_default_name_inside() -> None:
    assert file_name("rooms/{room_name}/", FIELDS, ".ogg") == "rooms/standup/TR_a-2026-12-02T143005.ogg"


def test_the_codec_extension_is_added_only_when_missing() -> None:
    assert file_name("audio", FIELDS, ".ogg") == "audio.ogg"
    assert file_name("audio.opus.ogg", FIELDS, ".ogg") == "audio.opus.ogg"


def test_a_leading_slash_stays_inside_the_bucket() -> None:
    assert file_name("/abs/a.ogg", FIELDS, ".ogg") == "abs/a.ogg"


def test_later_parts_get_their_number() -> None:
    assert file_name("a.ogg", FIELDS, ".ogg", part=2) == "a-2.ogg"
    assert file_name("a-{retry}.ogg", FIELDS, ".ogg", part=2) == "a-2.ogg"
    assert file_name("a-{retry}.ogg", FIELDS, ".ogg", part=0) == "a-0.ogg"
