"""What dispatch keeps about a worker, as stored in Redis."""

from __future__ import annotations

from dataclasses import dataclass

from livekit.protocol import agent, models

from parley.dispatch.ids import WorkerID


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    worker_id: WorkerID
    agent_name: str
    namespace: str
    job_type: int
    deployment: str
    version: str
    permission: models.ParticipantPermission
    api_key: str
    # where its connection lives
    owner: str
    reply_subject: str
    connection_id: str
    # its last status
    status: int = agent.WorkerStatus.WS_AVAILABLE
    load: float = 0.0
    job_count: int = 0
    updated_ms: int = 0
    assigned: int = 0
    """Jobs assigned since its last status update (their load is not in ``load`` yet)."""

    def to_fields(self) -> dict[str, bytes | str | int | float]:
        return {
            "agent_name": self.agent_name,
            "namespace": self.namespace,
            "job_type": self.job_type,
            "deployment": self.deployment,
            "version": self.version,
            "permission": self.permission.SerializeToString(),
            "api_key": self.api_key,
            "owner": self.owner,
            "reply_subject": self.reply_subject,
            "connection_id": self.connection_id,
            "status": self.status,
            "load": self.load,
            "job_count": self.job_count,
            "updated_ms": self.updated_ms,
            "assigned": self.assigned,
        }

    @classmethod
    def from_fields(cls, worker_id: str, raw: dict[bytes, bytes]) -> WorkerRecord:
        def s(key: str) -> str:
            return raw.get(key.encode(), b"").decode()

        permission = models.ParticipantPermission()
        permission.ParseFromString(raw.get(b"permission", b""))
        return cls(
            worker_id=WorkerID(worker_id),
            agent_name=s("agent_name"),
            namespace=s("namespace"),
            job_type=int(s("job_type") or 0),
            deployment=s("deployment"),
            version=s("version"),
            permission=permission,
            api_key=s("api_key"),
            owner=s("owner"),
            reply_subject=s("reply_subject"),
            connection_id=s("connection_id"),
            status=int(s("status") or 0),
            load=float(s("load") or 0.0),
            job_count=int(s("job_count") or 0),
            updated_ms=int(s("updated_ms") or 0),
            assigned=int(s("assigned") or 0),
        )

    def matches(self, job: agent.Job) -> bool:
        """Whether this worker may take ``job`` (agent name, type, namespace, deployment)."""
        if self.agent_name != job.agent_name or self.job_type != job.type:
            return False
        if job.namespace and self.namespace != job.namespace:
            return False
        return not job.deployment or self.deployment == job.deployment

    def available(self, threshold: float) -> bool:
        return self.status == agent.WorkerStatus.WS_AVAILABLE and self.load < threshold

    def weight(self) -> float:
        """1 - load, with the load of jobs assigned since its last report estimated."""
        per_job = self.load / self.job_count if self.job_count else 0.0
        return max(0.0, 1.0 - self.load - per_job * self.assigned)
