"""EgressRecord <-> the fields of its Redis hash (and the memory fake's copies)."""

from __future__ import annotations

from livekit.protocol import egress as lk

from parley.egress.record import EgressRecord
from parley.protocol.gen.egress.v1 import egress_pb2 as eg


def encode(r: EgressRecord) -> dict[str, bytes | str | int | float]:
    return {
        "info": r.info.SerializeToString(),
        "request": r.request.SerializeToString(),
        "cost": r.cost,
        "worker": r.worker_id,
        "part": r.part,
        "stop": int(r.stop_requested),
        "checkpoint": r.checkpoint,
        "urls": "\n".join(r.stream_urls),
        "reports": ",".join(f"{w}:{seq}" for w, seq in r.reports.items()),
        "lost": r.lost_at_ns,
        "due": r.due_ms,
    }


def decode(raw: dict[bytes, bytes]) -> EgressRecord | None:
    if b"info" not in raw:
        return None
    reports = {}
    for item in raw.get(b"reports", b"").decode().split(","):
        worker, _, seq = item.rpartition(":")
        if worker and seq.isdigit():
            reports[worker] = int(seq)
    urls = raw.get(b"urls", b"").decode()
    return EgressRecord(
        info=lk.EgressInfo.FromString(raw[b"info"]),
        request=eg.EgressRequest.FromString(raw.get(b"request", b"")),
        cost=float(raw.get(b"cost", b"0")),
        worker_id=raw.get(b"worker", b"").decode(),
        part=int(raw.get(b"part", b"0")),
        stop_requested=raw.get(b"stop", b"0") == b"1",
        checkpoint=raw.get(b"checkpoint", b""),
        stream_urls=urls.split("\n") if urls else [],
        reports=reports,
        lost_at_ns=int(raw.get(b"lost", b"0")),
        due_ms=int(raw.get(b"due", b"0")),
    )
