"""Pure EgressInfo transitions (LiveKit's ``pipeline/controller.go`` and ``livekit_egress.go``),
applied to an ``EgressRecord``: no I/O, the store commits what they return.

The status only moves forward (STARTING < ACTIVE < ENDING < a final status), a final status is
final, a report from a worker that does not hold the current part or with a seq already applied is
a no-op, and each real change adds one event (ACTIVE/ENDING or new results: ``egress_updated``; a
final status: ``egress_ended``). All timestamps are Unix nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from livekit.protocol import egress as lk

from parley.egress.config import CpuCosts
from parley.egress.errors import InvalidRequest, NotStreaming, StreamNotFound
from parley.egress.record import EgressRecord
from parley.egress.redact import redact, redact_url
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

S = lk.EgressStatus
STARTING, ACTIVE, ENDING = S.EGRESS_STARTING, S.EGRESS_ACTIVE, S.EGRESS_ENDING
COMPLETE, FAILED, ABORTED, LIMIT_REACHED = (
    S.EGRESS_COMPLETE,
    S.EGRESS_FAILED,
    S.EGRESS_ABORTED,
    S.EGRESS_LIMIT_REACHED,
)
FINAL = frozenset({COMPLETE, FAILED, ABORTED, LIMIT_REACHED})

EGRESS_STARTED = "egress_started"
EGRESS_UPDATED = "egress_updated"
EGRESS_ENDED = "egress_ended"

STOPPED_BEFORE_START = "Stop called before pipeline could start"
WORKER_LOST = "worker lost"
END_REASON_FAILURE = "End reason: Failure"


def status_name(status: int) -> str:
    return S.Name(status)  # type: ignore[arg-type]


def is_final(status: int) -> bool:
    return status in FINAL


def _rank(status: int) -> int:
    return 3 if status in FINAL else int(status)


# requests ------------------------------------------------------------------------------------------
def kind(request: eg.EgressRequest) -> str:
    """The request's kind: egress, room_composite, web, participant, track_composite, track."""
    which = request.WhichOneof("request")
    if which is None:
        raise InvalidRequest("request")
    return which


def inner(request: eg.EgressRequest) -> Any:
    return getattr(request, kind(request))


def room_name(request: eg.EgressRequest) -> str:
    """The room the egress records ("" for a web page)."""
    return "" if kind(request) == "web" else str(inner(request).room_name)


def _v2_source(req: lk.StartEgressRequest) -> str:
    return req.WhichOneof("source") or ""


def source_type(request: eg.EgressRequest) -> int:
    """SDK for participant/track/track-composite, audio-only composites and ``media``; WEB otherwise."""
    k = kind(request)
    if k in ("participant", "track_composite", "track"):
        return lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK
    if k == "room_composite" and request.room_composite.audio_only:
        return lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK
    if k == "egress":
        source = _v2_source(request.egress)
        if source == "media" or (source == "template" and request.egress.template.audio_only):
            return lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK
    return lk.EgressSourceType.EGRESS_SOURCE_TYPE_WEB


def cost(request: eg.EgressRequest, costs: CpuCosts) -> float:
    """Cores the job needs on a worker (LiveKit's CPU cost table)."""
    k = kind(request)
    if k == "room_composite":
        return costs.audio_room_composite if request.room_composite.audio_only else costs.room_composite
    if k == "egress":
        source = _v2_source(request.egress)
        if source == "template":
            audio_only = request.egress.template.audio_only
            return costs.audio_room_composite if audio_only else costs.room_composite
        return costs.web if source == "web" else costs.participant
    return float(getattr(costs, k))


def validate(request: eg.EgressRequest) -> None:
    """What the controller can refuse before any worker sees the request (the worker checks the rest)."""
    k = kind(request)
    if k == "web":
        if not request.web.url:
            raise InvalidRequest("url")
        return
    if k == "egress" and _v2_source(request.egress) == "web":
        if not request.egress.web.url:
            raise InvalidRequest("url")
        return
    if not room_name(request):
        raise InvalidRequest("room_name")
    if k == "track" and not request.track.track_id:
        raise InvalidRequest("track_id")
    if k == "participant" and not request.participant.identity:
        raise InvalidRequest("identity")
    if k == "egress" and not _v2_source(request.egress):
        raise InvalidRequest("source")


def stream_urls(request: eg.EgressRequest) -> list[str]:
    """Every stream URL the request names (unredacted)."""
    urls: list[str] = []
    req = inner(request)
    if kind(request) == "egress":
        for output in req.outputs:
            if output.HasField("stream"):
                urls.extend(output.stream.urls)
        return urls
    fields = req.DESCRIPTOR.fields_by_name
    if "stream" in fields and req.HasField("stream"):
        urls.extend(req.stream.urls)
    if "stream_outputs" in fields:
        for output in req.stream_outputs:
            urls.extend(output.urls)
    return urls


def _output_kinds(request: eg.EgressRequest) -> list[str]:
    """Output kinds in order, one entry per output (file, stream, segments, images)."""
    req = inner(request)
    k = kind(request)
    out: list[str] = []
    if k == "egress":
        for output in req.outputs:
            which = output.WhichOneof("config")
            if which:
                out.append(which)
        return out
    if k == "track":
        return ["file"] if req.HasField("file") else ["websocket"] if req.websocket_url else []
    fields = req.DESCRIPTOR.fields_by_name
    for legacy in ("file", "stream", "segments"):
        if legacy in fields and req.HasField(legacy):
            out.append(legacy)
    for name, output_kind in (
        ("file_outputs", "file"),
        ("stream_outputs", "stream"),
        ("segment_outputs", "segments"),
        ("image_outputs", "images"),
    ):
        if name in fields:
            out += [output_kind] * len(getattr(req, name))
    return out


def starting_info(egress_id: str, room_id: str, request: eg.EgressRequest, now_ns: int) -> lk.EgressInfo:
    """The STARTING info StartEgress answers: ids, source type, the redacted request, one empty
    result per output (and the deprecated single result when there is one kind of output)."""
    info = lk.EgressInfo(
        egress_id=egress_id,
        room_id=room_id,
        room_name=room_name(request),
        source_type=source_type(request),  # type: ignore[arg-type]
        status=STARTING,
        started_at=now_ns,
        updated_at=now_ns,
    )
    copy = type(inner(request))()
    copy.CopyFrom(inner(request))
    redact(copy)
    getattr(info, kind(request)).CopyFrom(copy)
    kinds = _output_kinds(request)
    urls = iter(stream_urls(request))
    for output_kind in kinds:
        if output_kind == "file":
            info.file_results.add()
        elif output_kind == "stream":
            for url in urls:  # every URL once (the stream outputs share one encode)
                info.stream_results.add(url=redact_url(url), started_at=now_ns)
        elif output_kind == "segments":
            info.segment_results.add()
        elif output_kind == "images":
            info.image_results.add()
    _sync_deprecated(info)
    return info


def _sync_deprecated(info: lk.EgressInfo) -> None:
    """The deprecated ``file``/``stream``/``segments`` mirror the results when there is one kind."""
    kinds = [bool(info.file_results), bool(info.stream_results), bool(info.segment_results)]
    if sum(kinds) + bool(info.image_results) != 1:
        return
    if info.file_results:
        info.file.CopyFrom(info.file_results[-1])
    elif info.stream_results:
        info.stream.CopyFrom(lk.StreamInfoList(info=list(info.stream_results)))
    elif info.segment_results:
        info.segments.CopyFrom(info.segment_results[-1])


def _snapshot(info: lk.EgressInfo) -> lk.EgressInfo:
    copy = lk.EgressInfo()
    copy.CopyFrom(info)
    return copy


def _event_for(old: int, new: int) -> str:
    return EGRESS_ENDED if is_final(new) and not is_final(old) else EGRESS_UPDATED


# transitions ----------------------------------------------------------------------------------------
def new_record(
    egress_id: str, room_id: str, request: eg.EgressRequest, costs: CpuCosts, now_ns: int
) -> EgressRecord:
    record = EgressRecord(
        info=starting_info(egress_id, room_id, request, now_ns),
        request=request,
        cost=cost(request, costs),
        stream_urls=stream_urls(request),
        created=True,
    )
    return record


def placed(record: EgressRecord, worker_id: str, accepted: lk.EgressInfo | None, now_ns: int) -> None:
    """A worker accepted the current part. At part 0 its validated info replaces the results
    placeholders; ``egress_started`` is written with the record."""
    record.worker_id = worker_id
    record.lost_at_ns = 0
    if accepted is not None and accepted.egress_id == record.egress_id and record.part == 0:
        for name in ("file_results", "stream_results", "segment_results", "image_results"):
            if getattr(accepted, name):
                del getattr(record.info, name)[:]
                getattr(record.info, name).extend(getattr(accepted, name))
        _sync_deprecated(record.info)
    if record.created:
        record.events.append((EGRESS_STARTED, _snapshot(record.info)))


def _set_status(record: EgressRecord, status: int, now_ns: int) -> bool:
    old = record.info.status
    if is_final(old) or _rank(status) <= _rank(old):
        return False
    record.info.status = status  # type: ignore[assignment]
    record.info.updated_at = now_ns
    if is_final(status):
        record.info.ended_at = now_ns
    return True


def _merge(target: Any, items: Iterable[Any], key: str) -> bool:
    """Merge results by ``key`` (a new key appends); True if anything changed."""
    changed = False
    for item in items:
        for i, existing in enumerate(target):
            if getattr(existing, key) == getattr(item, key) or not getattr(existing, key):
                if existing != item:
                    target[i].CopyFrom(item)
                    changed = True
                break
        else:
            target.add().CopyFrom(item)
            changed = True
    return changed


def apply_report(record: EgressRecord, report: eg.EgressReport, now_ns: int) -> bool:
    """A worker's report on its part; True if the record changed (the store commits it)."""
    if report.worker_id != record.worker_id or report.part != record.part:
        return False
    if report.seq and report.seq <= record.reports.get(report.worker_id, 0):
        return False
    if report.seq:
        record.reports[report.worker_id] = report.seq
    if report.checkpoint:
        record.checkpoint = report.checkpoint
    return _apply(record, report, now_ns) or bool(report.seq or report.checkpoint)


def apply_worker_info(record: EgressRecord, info: lk.EgressInfo, now_ns: int) -> bool:
    """The info a worker answered to StopEgress/UpdateStream (status and results)."""
    report = eg.EgressReport(
        status=info.status,
        error=info.error,
        error_code=info.error_code,
        details=info.details,
        manifest_location=info.manifest_location,
    )
    report.stream_results.extend(info.stream_results)
    report.file_results.extend(info.file_results)
    report.segment_results.extend(info.segment_results)
    report.image_results.extend(info.image_results)
    return _apply(record, report, now_ns)


def _apply(record: EgressRecord, report: eg.EgressReport, now_ns: int) -> bool:
    info = record.info
    if is_final(info.status):
        return False
    old = info.status
    status_changed = _set_status(record, report.status, now_ns)
    results = False
    results |= _merge(info.file_results, report.file_results, "filename")
    results |= _merge(info.stream_results, report.stream_results, "url")
    results |= _merge(info.segment_results, report.segment_results, "playlist_name")
    results |= _merge(info.image_results, report.image_results, "filename_prefix")
    if status_changed or results:
        info.updated_at = now_ns
        if report.error:
            info.error = report.error
            info.error_code = report.error_code
        if report.details:
            info.details = report.details
        elif info.status == FAILED:
            info.details = END_REASON_FAILURE
        if report.manifest_location:
            info.manifest_location = report.manifest_location
        _sync_deprecated(info)
        if info.status != STARTING:  # LiveKit's IOInfo sends no webhook for a STARTING update
            record.events.append((_event_for(old, info.status), _snapshot(info)))
    return status_changed or results


def abort_before_start(record: EgressRecord, now_ns: int) -> None:
    """STARTING and stopped: ABORTED, "Stop called before pipeline could start" (412)."""
    report = eg.EgressReport(status=ABORTED, error=STOPPED_BEFORE_START, error_code=412)
    _apply(record, report, now_ns)


def worker_lost(record: EgressRecord, now_ns: int) -> None:
    """The holder's lease expired: the job continues as the next part (``retry_count`` = part)."""
    record.worker_id = ""
    record.part += 1
    record.lost_at_ns = now_ns
    record.info.retry_count = record.part
    record.info.updated_at = now_ns
    record.info.details = f"End reason: worker lost; continuing as part {record.part}"
    record.events.append((EGRESS_UPDATED, _snapshot(record.info)))


def fail_lost(record: EgressRecord, now_ns: int) -> None:
    """No worker took the next part within ``continue_timeout``: FAILED "worker lost" (503)."""
    record.worker_id = ""
    _apply(record, eg.EgressReport(status=FAILED, error=WORKER_LOST, error_code=503), now_ns)


def update_streams(record: EgressRecord, req: lk.UpdateStreamRequest) -> list[str]:
    """The stream URLs after ``req`` (``StreamNotFound`` for a URL not streamed to)."""
    if "stream" not in _output_kinds(record.request) and not record.stream_urls:
        raise NotStreaming()
    urls = list(record.stream_urls)
    for url in req.remove_output_urls:
        if url not in urls:
            raise StreamNotFound(redact_url(url))
        urls.remove(url)
    urls += [u for u in req.add_output_urls if u not in urls]
    return urls


def listed(infos: Iterable[lk.EgressInfo], active: bool) -> list[lk.EgressInfo]:
    """ListEgress's ``active``: status below COMPLETE."""
    return [i for i in infos if not active or int(i.status) < int(COMPLETE)]
