"""One egress as the controller stores it: the EgressInfo (redacted, what the API returns) and the
job (the unredacted request, which worker holds which part, the stop flag, the last checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit.protocol import egress as lk

from parley.protocol.gen.egress.v1 import egress_pb2 as eg

Event = tuple[str, lk.EgressInfo]
"""An event name and the info it carries (a snapshot taken when it happened)."""


@dataclass(slots=True)
class EgressRecord:
    info: lk.EgressInfo
    request: eg.EgressRequest
    cost: float
    worker_id: str = ""
    """The worker holding the current part; empty while the part is being offered."""
    part: int = 0
    stop_requested: bool = False
    checkpoint: bytes = b""
    stream_urls: list[str] = field(default_factory=list)
    """The stream URLs (unredacted) the job is sending to now (UpdateStream changes them)."""
    reports: dict[str, int] = field(default_factory=dict)
    """worker id -> the last report seq applied (a repeat is a no-op)."""
    lost_at_ns: int = 0
    """When the current part started being offered again after its worker was lost (0: not lost)."""
    due_ms: int = 0
    """When the lease sweeper looks at it next: the lease deadline while a worker holds the part,
    the next offer while none does (0 once final)."""
    created: bool = False
    events: list[Event] = field(default_factory=list)
    """Events this change produces (written to the outbox with it)."""

    @property
    def egress_id(self) -> str:
        return self.info.egress_id

    @property
    def room_name(self) -> str:
        return self.info.room_name

    def job(self, finalize: bool = False) -> eg.EgressJob:
        job = eg.EgressJob(
            egress_id=self.egress_id,
            room_id=self.info.room_id,
            part=self.part,
            previous=self.checkpoint,
            cost=self.cost,
            finalize=finalize,
        )
        job.request.CopyFrom(self.request)
        job.info.CopyFrom(self.info)
        return job
