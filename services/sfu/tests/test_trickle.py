"""Client ICE candidates: an empty one ends the candidates, garbage raises ValueError (the signal
handler answers it with request_response UNCLASSIFIED_ERROR)."""

from __future__ import annotations

import json

import pytest

from parley.sfu.negotiation import parse_candidate

pytestmark = pytest.mark.unit

GOOD = "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host"


def test_js_and_rust_candidates_parse() -> None:
    candidate = parse_candidate(json.dumps({"candidate": GOOD, "sdpMid": "0", "sdpMLineIndex": 0}))
    assert candidate is not None and candidate.ip == "192.0.2.1" and candidate.port == 50000
    assert candidate.sdpMid == "0" and candidate.sdpMLineIndex == 0


@pytest.mark.parametrize("init", [json.dumps({"candidate": ""}), json.dumps({"sdpMid": "0"})])
def test_an_empty_candidate_is_none(init: str) -> None:
    assert parse_candidate(init) is None


@pytest.mark.parametrize(
    "init",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"candidate": "candidate:garbage"}),
        json.dumps({"candidate": "candidate:1 1 udp notanumber 192.0.2.1 50000 typ host"}),
        json.dumps({"candidate": "candidate:1 1 udp 1 192.0.2.1 port typ host"}),
    ],
)
def test_garbage_raises_value_error(init: str) -> None:
    with pytest.raises(ValueError, match=r"trickle|candidate"):
        parse_candidate(init)
