"""Publishing: add_track, binding offered m-lines to pending tracks, mute and unpublish."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiortc import RTCRtpTransceiver
from aiortc.sdp import SessionDescription
from livekit.protocol import models, rtc

from parley.observability import get_logger
from parley.protocol.ids import TRACK_PREFIX, new_id
from parley.sfu import dynacast, engine, subscriptions
from parley.sfu.participant import Participant, PublishedTrack

if TYPE_CHECKING:
    from parley.sfu.room import Room

log = get_logger("parley.sfu.publish")

_KIND = {models.TrackType.AUDIO: "audio", models.TrackType.VIDEO: "video"}
_DEFAULT_MIME = {"audio": "audio/opus", "video": "video/VP8"}
_STREAM = {
    models.TrackSource.CAMERA: "camera",
    models.TrackSource.MICROPHONE: "camera",
    models.TrackSource.SCREEN_SHARE: "screen",
    models.TrackSource.SCREEN_SHARE_AUDIO: "screen",
}
"""Go StreamFromTrackSource: camera and microphone group together, as do the two screen sources."""


def source_allowed(permission: models.ParticipantPermission, source: int) -> bool:
    if not permission.can_publish:
        return False
    allowed = list(permission.can_publish_sources)
    return not allowed or source in allowed


def add_track(p: Participant, request: rtc.AddTrackRequest) -> None:
    """Answer with track_published, or request_response NOT_ALLOWED / INVALID_REQUEST."""
    refusal: int | None = None
    if not source_allowed(p.permission, request.source):
        refusal = rtc.RequestResponse.Reason.NOT_ALLOWED
    elif request.type not in _KIND:
        refusal = rtc.RequestResponse.Reason.UNSUPPORTED_TYPE
    if refusal is not None:
        response = rtc.RequestResponse(
            reason=refusal,  # type: ignore[arg-type]
            message="publishing this track is not allowed"
            if refusal == rtc.RequestResponse.Reason.NOT_ALLOWED
            else "unsupported track type",
            add_track=request,
        )
        p.send(rtc.SignalResponse(request_response=response))
        log.info(
            "add_track refused",
            participant=p.sid,
            source=int(request.source),
            reason=rtc.RequestResponse.Reason.Name(refusal),  # type: ignore[arg-type]
        )
        return
    info = p.pending.get(request.cid)
    if info is None:
        info = track_info_from_request(request)
        p.pending[request.cid] = info
    p.send(rtc.SignalResponse(track_published=rtc.TrackPublishedResponse(cid=request.cid, track=info)))


def track_info_from_request(request: rtc.AddTrackRequest) -> models.TrackInfo:
    """A new TrackInfo with everything LiveKit copies from the request (Go addPendingTrackLocked):
    layers sorted low to high, audio features implied by stereo / disable_dtx, the stream named after
    the source when not given, simulcast audio as the default backup-codec policy, and one codec entry
    per requested simulcast codec (or a synthesised one) with its layers."""
    layers = sorted(request.layers, key=lambda layer: layer.quality)
    audio_features = list(dict.fromkeys(request.audio_features))
    if request.stereo and models.AudioTrackFeature.TF_STEREO not in audio_features:
        audio_features.append(models.AudioTrackFeature.TF_STEREO)
    if request.disable_dtx and models.AudioTrackFeature.TF_NO_DTX not in audio_features:
        audio_features.append(models.AudioTrackFeature.TF_NO_DTX)
    backup_policy = request.backup_codec_policy
    if request.type == models.TrackType.AUDIO and backup_policy != models.BackupCodecPolicy.REGRESSION:
        backup_policy = models.BackupCodecPolicy.SIMULCAST
    info = models.TrackInfo(
        sid=new_id(TRACK_PREFIX),
        type=request.type,
        name=request.name,
        muted=request.muted,
        width=request.width,
        height=request.height,
        simulcast=len(layers) > 1,
        disable_dtx=request.disable_dtx,
        source=request.source,
        layers=layers,
        stereo=request.stereo,
        disable_red=request.disable_red,
        encryption=request.encryption,
        stream=request.stream or _STREAM.get(request.source, "unknown"),
        audio_features=audio_features,
        backup_codec_policy=backup_policy,
        packet_trailer_features=list(dict.fromkeys(request.packet_trailer_features)),
    )
    if not request.simulcast_codecs:
        info.codecs.add(cid=request.cid, layers=layers)
        return info
    prefix = "video/" if request.type == models.TrackType.VIDEO else "audio/"
    seen: set[str] = set()
    for codec in request.simulcast_codecs:
        mime = codec.codec if "/" in codec.codec else prefix + codec.codec
        if not codec.codec or mime.lower() in seen:
            continue
        seen.add(mime.lower())
        codec_layers = sorted(codec.layers, key=lambda layer: layer.quality) if codec.layers else layers
        info.codecs.add(mime_type=mime, cid=codec.cid, layers=codec_layers)
    return info


def _take_pending(p: Participant, cid: str, kind: str) -> tuple[str, models.TrackInfo] | None:
    """Go getPendingTrack: msid track id == cid, else the first pending track of the same kind."""
    if cid in p.pending:
        return cid, p.pending.pop(cid)
    for key, info in p.pending.items():
        if _KIND.get(info.type) == kind:
            return key, p.pending.pop(key)
    return None


def bind_offer(room: Room, p: Participant, offer_sdp: str) -> None:
    """After the publisher offer is answered: bind new sending m-lines, unpublish stopped ones."""
    pc = p.pub_pc
    if pc is None:
        return
    parsed = SessionDescription.parse(offer_sdp)
    transceivers = {t.mid: t for t in pc.getTransceivers()}
    bound: list[PublishedTrack] = []
    for media in parsed.media:
        if media.kind not in ("audio", "video"):
            continue
        mid = media.rtp.muxId
        sending = media.direction in ("sendonly", "sendrecv") and media.port != 0
        if mid in p.bound_mids:
            if not sending:
                unpublish(room, p, p.bound_mids[mid])
            continue
        if not sending:
            continue
        parts = (media.msid or "").split()
        taken = _take_pending(p, parts[1] if len(parts) > 1 else "", media.kind)
        transceiver = transceivers.get(mid)
        if taken is None or transceiver is None:
            log.info("offered m-line without a pending track", participant=p.sid, mid=mid)
            continue
        cid, info = taken
        client_codec = info.codecs[0].mime_type if info.codecs else ""
        track = _bind(room, p, info, cid, mid, media.kind, transceiver)
        if track is not None:
            bound.append(track)
            dynacast.track_published(room, p, track, client_codec)
    if bound:
        p.sync_tracks()
        p.bump()
        room.broadcast_update(p)
        for track in bound:
            room.reporter.track_published(room.name, p.sid, track.info)
        subscriptions.reconcile_all(room)


def _bind(
    room: Room,
    p: Participant,
    info: models.TrackInfo,
    cid: str,
    mid: str,
    kind: str,
    transceiver: RTCRtpTransceiver,
) -> PublishedTrack | None:
    try:
        up = engine.UpTrack(transceiver.receiver, kind=kind, mid=mid, track_sid=info.sid, context=room.media)
    except Exception:
        log.exception("cannot create uptrack", participant=p.sid, track=info.sid)
        return None
    mime = up.mime_type or _DEFAULT_MIME[kind]
    info.mid = mid
    info.mime_type = mime
    layers = list(info.codecs[0].layers) if info.codecs and info.codecs[0].layers else list(info.layers)
    del info.codecs[:]
    info.codecs.add(mime_type=mime, mid=mid, cid=cid, layers=layers)
    track = PublishedTrack(info=info, up=up)
    p.published[info.sid] = track
    p.bound_mids[mid] = info.sid
    log.info("track published", participant=p.sid, track=info.sid, kind=kind, mime=mime)
    return track


def unpublish(room: Room, p: Participant, track_sid: str, *, notify: bool = True) -> None:
    track = p.published.pop(track_sid, None)
    if track is None:
        return
    room.taps.end_track(track_sid, "track unpublished")
    dynacast.track_unpublished(room, track_sid)
    for mid, sid in list(p.bound_mids.items()):
        if sid == track_sid:
            del p.bound_mids[mid]
    for other in room.participants.values():
        subscriptions.unsubscribe(room, other, track_sid)
    if track.up is not None:
        try:
            track.up.close()
        except Exception:
            log.exception("uptrack close failed", track=track_sid)
    room.reporter.track_unpublished(room.name, p.sid, track_sid)
    if notify:
        p.send(rtc.SignalResponse(track_unpublished=rtc.TrackUnpublishedResponse(track_sid=track_sid)))
        p.sync_tracks()
        p.bump()
        room.broadcast_update(p)


def set_muted(room: Room, p: Participant, track_sid: str, muted: bool, *, version: int = 0) -> bool:
    """Mute or unmute a published (or pending) track; nothing when it already is that way.

    ``version``: room-state's participant version for a MutePublishedTrack (it wrote the change
    already: the report below changes nothing there); 0 for the publisher's own mute.
    """
    track = p.published.get(track_sid)
    if track is None:
        pending = next((i for i in p.pending.values() if i.sid == track_sid), None)
        if pending is not None:
            pending.muted = muted
            return True
        log.info("mute for an unknown track ignored", participant=p.sid, track=track_sid)
        return False
    if track.info.muted == muted:
        return True
    track.info.muted = muted
    for other in room.participants.values():
        down = other.downtracks.get(track_sid)
        if down is not None:
            down.paused = muted
    room.taps.set_muted(track_sid, muted)
    dynacast.track_muted(room, track_sid, muted)
    p.sync_tracks()
    p.bump(version)
    room.broadcast_update(p)
    room.reporter.track_updated(room.name, p.sid, track_sid, muted)
    return True
