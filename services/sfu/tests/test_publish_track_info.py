"""add_track: every AddTrackRequest field LiveKit copies into TrackInfo reaches it (Go
ParticipantImpl.addPendingTrackLocked), including packet_trailer_features."""

from __future__ import annotations

import pytest
from livekit.protocol import models, rtc

from parley.sfu import publish
from parley.sfu.participant import Participant

pytestmark = pytest.mark.unit

Feature = models.AudioTrackFeature


class FakeOutbox:
    connection_id = "CO_fake"

    def __init__(self) -> None:
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)


def publisher() -> Participant:
    permission = models.ParticipantPermission(can_publish=True, can_subscribe=True)
    return Participant(
        info=models.ParticipantInfo(sid="PA_pub", identity="pub", permission=permission),
        outbox=FakeOutbox(),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=16,
        client_info=models.ClientInfo(),
    )


def published(p: Participant) -> models.TrackInfo:
    sent = p.outbox.sent  # type: ignore[attr-defined]
    assert sent[-1].WhichOneof("message") == "track_published"
    track: models.TrackInfo = sent[-1].track_published.track
    return track


def video_request(**kw: object) -> rtc.AddTrackRequest:
    layers = [
        models.VideoLayer(
            quality=models.VideoQuality.HIGH, width=1280, height=720, bitrate=1_700_000, rid="f"
        ),
        models.VideoLayer(quality=models.VideoQuality.LOW, width=320, height=180, bitrate=150_000, rid="q"),
        models.VideoLayer(
            quality=models.VideoQuality.MEDIUM, width=640, height=360, bitrate=450_000, rid="h"
        ),
    ]
    return rtc.AddTrackRequest(
        cid="cid-v",
        name="camera",
        type=models.TrackType.VIDEO,
        source=models.TrackSource.CAMERA,
        width=1280,
        height=720,
        layers=layers,
        **kw,  # type: ignore[arg-type]
    )


def test_packet_trailer_features_reach_track_info() -> None:
    p = publisher()
    features = [models.PacketTrailerFeature.PTF_USER_TIMESTAMP, models.PacketTrailerFeature.PTF_FRAME_ID]
    publish.add_track(p, video_request(packet_trailer_features=[*features, features[0]]))
    info = published(p)
    assert list(info.packet_trailer_features) == features
    assert list(p.pending["cid-v"].packet_trailer_features) == features


def test_video_fields_layers_sorted_codecs_and_stream() -> None:
    p = publisher()
    simulcast = [
        rtc.SimulcastCodec(codec="vp8", cid="cid-v"),
        rtc.SimulcastCodec(codec="vp8", cid="dup"),
        rtc.SimulcastCodec(codec="h264", cid=""),
    ]
    publish.add_track(
        p,
        video_request(
            muted=True,
            encryption=models.Encryption.Type.GCM,
            simulcast_codecs=simulcast,
            backup_codec_policy=models.BackupCodecPolicy.REGRESSION,
        ),
    )
    info = published(p)
    assert info.sid.startswith("TR_") and info.type == models.TrackType.VIDEO
    assert (info.name, info.width, info.height, info.muted) == ("camera", 1280, 720, True)
    assert info.source == models.TrackSource.CAMERA and info.stream == "camera"
    assert info.encryption == models.Encryption.Type.GCM
    assert info.backup_codec_policy == models.BackupCodecPolicy.REGRESSION
    assert info.simulcast
    assert [layer.rid for layer in info.layers] == ["q", "h", "f"]
    assert [(c.mime_type, c.cid) for c in info.codecs] == [("video/vp8", "cid-v"), ("video/h264", "")]
    assert [layer.rid for layer in info.codecs[0].layers] == ["q", "h", "f"]


def test_audio_features_stream_and_backup_policy() -> None:
    p = publisher()
    request = rtc.AddTrackRequest(
        cid="cid-a",
        type=models.TrackType.AUDIO,
        source=models.TrackSource.SCREEN_SHARE_AUDIO,
        stereo=True,
        disable_dtx=True,
        disable_red=True,
        audio_features=[Feature.TF_AUTO_GAIN_CONTROL, Feature.TF_AUTO_GAIN_CONTROL],
    )
    publish.add_track(p, request)
    info = published(p)
    assert info.stereo and info.disable_dtx and info.disable_red
    assert list(info.audio_features) == [Feature.TF_AUTO_GAIN_CONTROL, Feature.TF_STEREO, Feature.TF_NO_DTX]
    assert info.stream == "screen"
    assert info.backup_codec_policy == models.BackupCodecPolicy.SIMULCAST
    assert [(c.mime_type, c.cid) for c in info.codecs] == [("", "cid-a")]


def test_explicit_stream_kept_and_same_cid_answers_the_same_track() -> None:
    p = publisher()
    publish.add_track(p, video_request(stream="mine"))
    first = published(p)
    publish.add_track(p, video_request(stream="other"))
    again = published(p)
    assert first.stream == "mine" and again.sid == first.sid and again.stream == "mine"
