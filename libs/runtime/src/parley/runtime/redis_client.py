"""The one way a service gets its Redis/Valkey client, from the ``redis`` config section.

Two kinds, as LiveKit's ``redis.GetRedisClient``: one server at ``redis.address``, or the primary
Redis Sentinel names (``redis.sentinel_addresses`` + ``redis.sentinel_master_name``). The Sentinel
client asks the sentinels for the primary's address on every new connection, so after a failover
it follows the promoted replica; a reply ``READONLY`` from a demoted primary drops the connection
(redis-py's ``SentinelManagedConnection``), so the next attempt asks the sentinels again.

Every command retries ConnectionError, TimeoutError and ReadOnlyError with exponential backoff for
``redis.failover_wait`` seconds (``DeadlineRetry``): a request made during a failover or a restart
is delayed, not failed. A reply not read within ``redis.read_timeout`` (default 3 s, as go-redis)
is a TimeoutError, so a primary that vanished without a reset (powered off, partitioned) is left
for the new one; TCP keepalive and a PING before reusing a connection idle for
``HEALTH_CHECK_INTERVAL`` find dead pooled connections. What this means for writes:

- a command whose reply was lost may have been applied, and the retry sends it again: every write
  a caller makes must be safe to repeat (SET, HSET, ZADD, or a Lua script that checks first);
- a command on a WATCHing pipeline that loses its connection raises WatchError instead of being
  retried; an EXEC that lost its reply may have committed (MULTI/EXEC is atomic on the server, so
  all or nothing), and the caller must find out before running its change again (room-state's
  ``Store.mutate`` writes a marker key in each transaction and reads it back);
- ``register_script`` objects fall back from EVALSHA to SCRIPT LOAD + EVALSHA on NOSCRIPT (a
  promoted replica may not hold the script cache), so Lua keeps working after a failover.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, RedisError, TimeoutError

from parley.config import RedisConfig
from parley.observability import get_logger

log = get_logger("parley.runtime.redis")

T = TypeVar("T")

DEFAULT_READ_TIMEOUT_MS = 3000
"""``redis.read_timeout: 0`` means this (go-redis's default, as LiveKit's 0)."""
HEALTH_CHECK_INTERVAL = 10
"""Seconds a pooled connection may sit idle before a PING checks it ahead of the next command."""
KEEPALIVE = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
"""TCP keepalive on every data connection: a silent peer is found in about 25 s while idle."""

RETRY_ON: tuple[type[RedisError], ...] = (ConnectionError, TimeoutError, ReadOnlyError)
"""What a failover looks like to a client: the primary is gone (ConnectionError, including
MasterNotFoundError while no sentinel names a healthy primary), slow (TimeoutError) or demoted
(ReadOnlyError)."""
BACKOFF_BASE = 0.025
BACKOFF_CAP = 0.5
"""Seconds between attempts: 0.05, 0.1, 0.2, 0.4, then every 0.5 until the deadline."""


class DeadlineRetry(Retry):
    """redis-py's Retry, bounded by time instead of a count: attempts stop once the next backoff
    would pass ``budget`` seconds after the call began (the count is only a backstop)."""

    def __init__(self, budget: float, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        super().__init__(ExponentialBackoff(cap=cap, base=base), retries=100_000, supported_errors=RETRY_ON)
        self.budget = budget

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        deadline = time.monotonic() + self.budget
        self._backoff.reset()  # type: ignore[no-untyped-call]
        failures = 0
        while True:
            try:
                return await do()
            except self._supported_errors as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                # the failure callback drops the connection; on a WATCHing pipeline it raises
                # WatchError so that the caller re-runs the whole transaction
                await (fail(error, failures) if with_failure_count else fail(error))
                delay = self._backoff.compute(failures)
                if failures > self._retries or time.monotonic() + delay > deadline:
                    raise error
                await asyncio.sleep(delay)


class FollowingConnection(SentinelManagedConnection):
    """Asks the sentinels for the primary on every (re)connect.

    redis-py (8.1) reconnects a connection that a failed command dropped with
    ``connect_check_health``, which skips ``SentinelManagedConnection.connect`` and so dials the
    old primary's address again for as long as the command is retried: a retry never reached the
    promoted replica. Resolving the address in ``_connect`` covers every way in.
    """

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()  # type: ignore[no-untyped-call]


class FollowingSSLConnection(FollowingConnection, SSLConnection):
    """``FollowingConnection`` over TLS."""


class SentinelClient(aioredis.Redis):
    """The primary's client; closing it closes the connections to the sentinels too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _seconds(ms: int) -> float | None:
    return ms / 1000 if ms else None


def _keepalive_options() -> dict[int, int]:
    """The ``KEEPALIVE`` options this platform has (Linux has all three)."""
    return {getattr(socket, name): value for name, value in KEEPALIVE.items() if hasattr(socket, name)}


def redis_client(config: RedisConfig) -> aioredis.Redis:
    """A client for ``config``: Sentinel-managed when ``sentinel_addresses`` is set, else plain."""
    common: dict[str, Any] = {
        "db": config.db,
        "username": config.username or None,
        "password": config.password or None,
        "socket_connect_timeout": _seconds(config.dial_timeout),
        "socket_timeout": (config.read_timeout or DEFAULT_READ_TIMEOUT_MS) / 1000,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "retry": DeadlineRetry(config.failover_wait),
        "retry_on_error": list(RETRY_ON),
    }
    if not config.uses_sentinel:
        host, port = _host_port(config.address)
        log.info("redis client", mode="single", address=config.address, db=config.db)
        return aioredis.Redis(host=host, port=port, ssl=config.use_tls, **common)
    sentinel_kwargs: dict[str, Any] = {
        "username": config.sentinel_username or None,
        "password": config.sentinel_password or None,
        "socket_connect_timeout": _seconds(config.dial_timeout),
        "socket_timeout": _seconds(config.dial_timeout),
        # a dead sentinel is skipped at once (the next one is asked); the command's retry waits
        "retry": Retry(NoBackoff(), 0),
        "ssl": config.use_tls,
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        [_host_port(a) for a in config.sentinel_addresses], sentinel_kwargs=sentinel_kwargs, **common
    )
    log.info(
        "redis client",
        mode="sentinel",
        master=config.sentinel_master_name,
        sentinels=config.sentinel_addresses,
        db=config.db,
    )
    connection_class = FollowingSSLConnection if config.use_tls else FollowingConnection
    client: aioredis.Redis = sentinel.master_for(
        config.sentinel_master_name,
        redis_class=SentinelClient,
        connection_class=connection_class,
        ssl=config.use_tls,
    )
    return client
