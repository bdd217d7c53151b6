"""Wire the service: topology, partition leases, and one courier per (endpoint, partition)."""

from __future__ import annotations

import asyncio
import contextlib

from parley.observability import TaskSet, get_logger
from parley.runtime import ServiceContext
from parley.webhook import topology
from parley.webhook.backoff import Backoff
from parley.webhook.config import WebhookServiceConfig
from parley.webhook.courier import Courier, CourierSettings
from parley.webhook.endpoint import Endpoint
from parley.webhook.errors import MisconfiguredWebhook
from parley.webhook.leases import LeaseManager

log = get_logger("parley.webhook")


class WebhookService:
    def __init__(self, config: WebhookServiceConfig, ctx: ServiceContext) -> None:
        self._config = config
        self._ctx = ctx
        hook, svc = config.webhook, config.webhook_service
        secret = config.keys.get(hook.api_key, "")
        if hook.urls and not secret:
            raise MisconfiguredWebhook("webhook.urls is set but webhook.api_key has no secret in keys")
        self._endpoints = [
            Endpoint(
                url=url,
                api_key=hook.api_key,
                api_secret=secret,
                request_timeout=hook.request_timeout,
                max_connections=svc.max_connections,
            )
            for url in dict.fromkeys(hook.urls)
        ]
        self._max_age = svc.stream_max_age or 2 * hook.retention
        self._settings = CourierSettings(
            retention=hook.retention,
            backoff=Backoff(hook.backoff_min, max(hook.backoff_min, hook.backoff_max)),
            ack_wait=svc.ack_wait,
            batch=svc.batch,
            backfill=svc.backfill,
            inactive_threshold=self._max_age,
            stop_grace=hook.request_timeout + 1.0,
        )
        self._tasks = TaskSet("webhook")
        self._couriers: dict[int, list[tuple[Courier, asyncio.Task[None]]]] = {}
        self._leases: LeaseManager | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._draining = False

    async def start(self) -> None:
        if not self._endpoints:
            log.info("no webhook urls configured; idle")
            return
        svc = self._config.webhook_service
        bus = self._ctx.bus
        partitions = await topology.ensure_stream(
            bus,
            partitions=svc.partitions,
            max_age=self._max_age,
            replicas=self._config.nats.stream_replicas,
            backfill=svc.backfill,
        )
        kv = await bus.key_value(topology.LEASE_BUCKET, ttl=svc.lease_ttl)
        self._leases = LeaseManager(
            kv,
            self._ctx.node_id,
            partitions,
            ttl=svc.lease_ttl,
            renew_interval=svc.renew_interval,
            on_acquire=self._start_partition,
            on_release=self._stop_partition,
        )
        for endpoint in self._endpoints:
            log.info("webhook endpoint", endpoint=endpoint.id, url=endpoint.display)
        self._lease_task = self._tasks.spawn(self._leases.run(), name="webhook.leases")

    async def _start_partition(self, partition: int) -> None:
        started = []
        for endpoint in self._endpoints:
            courier = Courier(self._ctx.bus, endpoint, partition, self._settings)
            started.append((courier, self._tasks.spawn(courier.run(), name=courier.durable)))
        self._couriers[partition] = started

    async def _stop_partition(self, partition: int) -> None:
        couriers = self._couriers.pop(partition, [])
        for courier, _ in couriers:
            courier.stop()
        tasks = [task for _, task in couriers]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._settings.stop_grace + 2.0)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2.0)

    @property
    def partitions(self) -> list[int]:
        return sorted(self._couriers)

    async def drain(self) -> None:
        """Hand every partition back so another instance takes over without waiting for TTLs."""
        self._draining = True
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        for couriers in self._couriers.values():  # stop them all at once, then settle each lease
            for courier, _ in couriers:
                courier.stop()
        if self._leases is not None:
            await self._leases.release_all()

    async def aclose(self) -> None:
        await self._tasks.aclose(timeout=self._settings.stop_grace + 2.0)
        for endpoint in self._endpoints:
            await endpoint.aclose()

    def healthy(self) -> bool:
        return not self._draining and (self._lease_task is None or not self._lease_task.done())


async def build(config: WebhookServiceConfig, ctx: ServiceContext) -> WebhookService:
    return WebhookService(config, ctx)
