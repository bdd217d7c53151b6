"""The egress worker's config: the shared sections plus ``egress_worker``."""

from __future__ import annotations

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section


class S3Defaults(Section):
    """The storage used when a request names none (LiveKit's egress ``s3`` config)."""

    access_key: str = ""
    secret: str = ""
    region: str = "us-east-1"
    endpoint: str = ""
    bucket: str = ""
    force_path_style: bool = True


class EgressWorkerSection(Section):
    capacity: float = Field(default=0.0, ge=0)
    """Cores this worker offers (0: the machine's)."""
    max_cpu_utilization: float = Field(default=0.8, gt=0, le=1)
    """Share of ``capacity`` jobs may reserve (the controller ranks by the same rule)."""
    stats_interval: float = Field(default=1.0, gt=0)
    """Seconds between WorkerStats heartbeats (they also renew the jobs' leases)."""
    rtp_host: str = "127.0.0.1"
    """Address the RTP sockets bind to and the SFU's taps send to (the private network's when the
    worker and the SFU are on different hosts)."""
    local_dir: str = "recordings"
    """Where recordings go when a request names no storage and ``s3`` is not set."""
    work_dir: str = ""
    """Where files are written while recording (default: a temporary directory)."""
    s3: S3Defaults | None = None
    """Default object storage (requests' own ``s3`` wins)."""
    source_timeout: float = Field(default=20.0, gt=0)
    """Seconds without a packet from the tap after which the source counts as closed."""
    start_timeout: float = Field(default=30.0, gt=0)
    """Seconds a job may wait for its first media before it fails."""
    report_timeout: float = Field(default=3.0, gt=0)
    """Seconds one EgressReport call may take (it is retried until a controller answers)."""


class EgressWorkerConfig(ParleyConfig):
    egress_worker: EgressWorkerSection = Field(default_factory=EgressWorkerSection)
