"""JetStream objects the service owns: the partitioned copy of room events and its consumers.

``PARLEY_WEBHOOK`` sources ``PARLEY_EVENTS`` with a server-side subject transform that hashes
the room token into ``partitions`` buckets: ``parley.events.room.<token>`` is stored as
``parley.webhook.<partition>.<token>``. NATS does the partitioning, so a consumer per
(endpoint, partition) receives exactly its rooms, in stream order, and nothing else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import nats.js.errors
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
    SubjectTransform,
)

from parley.bus import NatsBus, subjects
from parley.observability import get_logger

STREAM = subjects.WEBHOOK_STREAM
SUBJECT_PREFIX = subjects.WEBHOOK_PREFIX
LEASE_BUCKET = subjects.WEBHOOK_LEASES
_PARTITION_RE = re.compile(r"\{\{\s*partition\((\d+),\s*1\)\s*\}\}")

log = get_logger("parley.webhook.topology")


def transform_dest(partitions: int) -> str:
    return f"{SUBJECT_PREFIX}.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}"


def partition_filter(partition: int) -> str:
    return subjects.webhook_partition(partition)


def room_token_of(subject: str) -> str:
    """``parley.webhook.<p>.<token>`` -> ``<token>``."""
    return subject.rsplit(".", 1)[-1]


def durable_name(endpoint_id: str, partition: int) -> str:
    return f"webhook_{endpoint_id}_p{partition}"


async def ensure_stream(
    bus: NatsBus, *, partitions: int, max_age: float, replicas: int, backfill: float
) -> int:
    """Create the partitioned stream if missing; return the partition count it actually uses.

    The count of an existing stream wins (its stored subjects depend on it); a different
    configured value is logged, not applied.
    """
    js = bus.jetstream
    await _ensure_events_stream(bus, replicas)
    try:
        info = await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        start = datetime.now(UTC) - timedelta(seconds=backfill)
        config = StreamConfig(
            name=STREAM,
            subjects=[],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=max_age,
            num_replicas=replicas,
            sources=[
                StreamSource(
                    name=subjects.EVENTS_STREAM,
                    opt_start_time=start,
                    subject_transforms=[
                        SubjectTransform(src=subjects.ROOM_EVENTS_EACH, dest=transform_dest(partitions))
                    ],
                )
            ],
        )
        try:
            await js.add_stream(config)
            log.info("created partitioned event stream", stream=STREAM, partitions=partitions)
            return partitions
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(STREAM)  # another instance created it meanwhile
    existing = _partitions_of(info.config)
    if existing and existing != partitions:
        log.warning(
            "webhook_service.partitions differs from the stream's; keeping the stream's",
            configured=partitions,
            stream=existing,
        )
        return existing
    return partitions


async def _ensure_events_stream(bus: NatsBus, replicas: int) -> None:
    """room-state owns PARLEY_EVENTS; create it (same defaults) only if nobody has yet."""
    try:
        await bus.jetstream.stream_info(subjects.EVENTS_STREAM)
    except nats.js.errors.NotFoundError:
        await bus.ensure_stream(subjects.EVENTS_STREAM, [subjects.EVENTS_ALL], replicas=replicas)


def _partitions_of(config: StreamConfig) -> int:
    for source in config.sources or []:
        for transform in source.subject_transforms or []:
            if match := _PARTITION_RE.search(transform.dest):
                return int(match.group(1))
    return 0


async def ensure_consumer(
    bus: NatsBus,
    durable: str,
    partition: int,
    *,
    ack_wait: float,
    max_ack_pending: int,
    backfill: float,
    inactive_threshold: float,
) -> None:
    """Create the durable consumer of one (endpoint, partition) unless it exists.

    A new consumer starts ``backfill`` seconds back; an existing one resumes where acked.
    """
    js = bus.jetstream
    try:
        await js.consumer_info(STREAM, durable)
        return
    except nats.js.errors.NotFoundError:
        pass
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=max_ack_pending,
        filter_subject=partition_filter(partition),
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=datetime.now(UTC) - timedelta(seconds=backfill),
        inactive_threshold=inactive_threshold,
    )
    try:
        await js.add_consumer(STREAM, config)
    except nats.js.errors.BadRequestError:
        await js.consumer_info(STREAM, durable)  # created concurrently: fine if it exists now
