"""Pure EgressInfo rules: the STARTING info (source type, redaction, result placeholders), costs,
validation, and the transitions (forward only, final is final, LiveKit's strings and codes)."""

from __future__ import annotations

import pytest
from livekit.protocol import egress as lk

from parley.egress import infos
from parley.egress.config import CpuCosts
from parley.egress.errors import InvalidRequest, NotStreaming, StreamNotFound
from parley.egress.redact import redact_url
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

pytestmark = pytest.mark.unit

S = lk.EgressStatus
SDK, WEB = lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK, lk.EgressSourceType.EGRESS_SOURCE_TYPE_WEB
NOW = 1_700_000_000_000_000_000


def record(request: eg.EgressRequest) -> infos.EgressRecord:  # type: ignore[name-defined]
    r = infos.new_record("EG_x", "RM_x", request, CpuCosts(), NOW)
    infos.placed(r, "W1", None, NOW)
    return r


def test_track_egress_starting_info_is_redacted_with_one_file_result() -> None:
    s3 = lk.S3Upload(access_key="AKIA", secret="shh", session_token="tok", bucket="b", region="eu")
    req = eg.EgressRequest(
        track=lk.TrackEgressRequest(
            room_name="r", track_id="TR_a", file=lk.DirectFileOutput(filepath="x", s3=s3)
        )
    )
    info = infos.starting_info("EG_x", "RM_x", req, NOW)
    assert (info.status, info.source_type, info.started_at, info.updated_at) == (
        S.EGRESS_STARTING,
        SDK,
        NOW,
        NOW,
    )
    assert info.track.file.s3 == lk.S3Upload(
        access_key="{access_key}", secret="{secret}", session_token="{session_token}", bucket="b", region="eu"
    )
    assert req.track.file.s3.secret == "shh"  # the job keeps the real one
    assert len(info.file_results) == 1 and info.HasField("file")


def test_source_types_and_costs() -> None:
    costs = CpuCosts()
    cases = [
        (eg.EgressRequest(room_composite=lk.RoomCompositeEgressRequest(room_name="r")), WEB, 4.0),
        (
            eg.EgressRequest(room_composite=lk.RoomCompositeEgressRequest(room_name="r", audio_only=True)),
            SDK,
            1.0,
        ),
        (eg.EgressRequest(web=lk.WebEgressRequest(url="https://x")), WEB, 4.0),
        (eg.EgressRequest(participant=lk.ParticipantEgressRequest(room_name="r", identity="a")), SDK, 2.0),
        (eg.EgressRequest(track_composite=lk.TrackCompositeEgressRequest(room_name="r")), SDK, 1.0),
        (eg.EgressRequest(track=lk.TrackEgressRequest(room_name="r", track_id="T")), SDK, 0.5),
        (
            eg.EgressRequest(egress=lk.StartEgressRequest(room_name="r", template=lk.TemplateSource())),
            WEB,
            4.0,
        ),
        (eg.EgressRequest(egress=lk.StartEgressRequest(room_name="r", media=lk.MediaSource())), SDK, 2.0),
    ]
    for request, source, cost in cases:
        assert (infos.source_type(request), infos.cost(request, costs)) == (source, cost)


def test_validation_names_the_missing_field() -> None:
    with pytest.raises(InvalidRequest, match="request has missing or invalid field: room_name"):
        infos.validate(eg.EgressRequest(track=lk.TrackEgressRequest(track_id="T")))
    with pytest.raises(InvalidRequest, match="identity"):
        infos.validate(eg.EgressRequest(participant=lk.ParticipantEgressRequest(room_name="r")))
    with pytest.raises(InvalidRequest, match="url"):
        infos.validate(eg.EgressRequest(web=lk.WebEgressRequest()))


def test_urls_are_redacted() -> None:
    assert (
        redact_url("rtmp://live.example.com/app/sk_1234567890") == "rtmp://live.example.com/app/{sk_...890}"
    )
    assert redact_url("rtmps://h/app/abc") == "rtmps://h/app/{...}"
    assert redact_url("https://h/ws?token=secret&x=1") == "https://h/ws?token={...}&x={...}"


def test_status_only_moves_forward_and_final_is_final() -> None:
    r = record(eg.EgressRequest(track=lk.TrackEgressRequest(room_name="r", track_id="T")))
    assert [e[0] for e in r.events] == ["egress_started"]
    starting = eg.EgressReport(worker_id="W1", seq=1, file_results=[lk.FileInfo(filename="a.ogg")])
    assert infos.apply_report(r, starting, NOW + 1)  # stored, but no webhook while STARTING (as LiveKit)
    assert [e[0] for e in r.events] == ["egress_started"] and r.info.file_results[0].filename == "a.ogg"
    r.reports.clear()
    assert infos.apply_report(r, eg.EgressReport(worker_id="W1", seq=1, status=S.EGRESS_ACTIVE), NOW + 1)
    assert not infos.apply_report(r, eg.EgressReport(worker_id="W1", seq=1, status=S.EGRESS_ENDING), NOW + 2)
    assert not infos.apply_report(r, eg.EgressReport(worker_id="W2", seq=9, status=S.EGRESS_ENDING), NOW + 2)
    infos.apply_report(r, eg.EgressReport(worker_id="W1", seq=2, status=S.EGRESS_STARTING), NOW + 3)
    assert r.info.status == S.EGRESS_ACTIVE
    infos.apply_report(
        r, eg.EgressReport(worker_id="W1", seq=3, status=S.EGRESS_FAILED, error="x", error_code=500), NOW + 4
    )
    assert (r.info.status, r.info.error, r.info.error_code, r.info.ended_at) == (
        S.EGRESS_FAILED,
        "x",
        500,
        NOW + 4,
    )
    assert r.info.details == "End reason: Failure"
    infos.apply_report(r, eg.EgressReport(worker_id="W1", seq=4, status=S.EGRESS_COMPLETE), NOW + 5)
    assert r.info.status == S.EGRESS_FAILED
    assert [e[0] for e in r.events] == ["egress_started", "egress_updated", "egress_ended"]


def test_abort_before_start_and_worker_lost() -> None:
    r = record(eg.EgressRequest(track=lk.TrackEgressRequest(room_name="r", track_id="T")))
    infos.abort_before_start(r, NOW + 1)
    assert (r.info.status, r.info.error, r.info.error_code) == (
        S.EGRESS_ABORTED,
        infos.STOPPED_BEFORE_START,
        412,
    )
    r = record(eg.EgressRequest(track=lk.TrackEgressRequest(room_name="r", track_id="T")))
    infos.worker_lost(r, NOW + 1)
    assert (r.part, r.info.retry_count, r.worker_id, r.lost_at_ns) == (1, 1, "", NOW + 1)
    infos.fail_lost(r, NOW + 2)
    assert (r.info.status, r.info.error, r.info.error_code) == (S.EGRESS_FAILED, "worker lost", 503)


def test_update_streams() -> None:
    track = record(eg.EgressRequest(track=lk.TrackEgressRequest(room_name="r", track_id="T")))
    with pytest.raises(NotStreaming):
        infos.update_streams(track, lk.UpdateStreamRequest())
    out = lk.StreamOutput(urls=["rtmp://a/live/one"])
    r = record(
        eg.EgressRequest(room_composite=lk.RoomCompositeEgressRequest(room_name="r", stream_outputs=[out]))
    )
    with pytest.raises(StreamNotFound):
        infos.update_streams(r, lk.UpdateStreamRequest(remove_output_urls=["rtmp://a/live/two"]))
    new = infos.update_streams(
        r,
        lk.UpdateStreamRequest(add_output_urls=["rtmp://b/live/x"], remove_output_urls=["rtmp://a/live/one"]),
    )
    assert new == ["rtmp://b/live/x"]


def test_active_keeps_status_below_complete() -> None:
    found = [lk.EgressInfo(egress_id=str(s), status=s) for s in S.values()]  # type: ignore[misc,arg-type]
    assert [i.status for i in infos.listed(found, active=True)] == [0, 1, 2]
    assert len(infos.listed(found, active=False)) == 7
