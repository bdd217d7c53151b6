"""``redis_client``: the right client kind and options for a plain address or Redis Sentinel, and
``DeadlineRetry``: failover errors retried with backoff until a time budget, others not."""

from __future__ import annotations

import socket
import time

import pytest
from pydantic import ValidationError
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError, TimeoutError

from parley.config import RedisConfig
from parley.runtime import DeadlineRetry, redis_client
from parley.runtime.redis_client import (
    HEALTH_CHECK_INTERVAL,
    FollowingConnection,
    FollowingSSLConnection,
    SentinelClient,
)

pytestmark = pytest.mark.unit


async def test_plain_address_gives_a_plain_client_with_the_failover_retry() -> None:
    config = RedisConfig(address="10.1.2.3:6380", db=2, username="u", password="p", failover_wait=7.5)
    client = redis_client(config)
    try:
        pool = client.connection_pool
        assert not isinstance(pool, SentinelConnectionPool)
        kwargs = pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.1.2.3", 6380, 2)
        assert (kwargs["username"], kwargs["password"]) == ("u", "p")
        assert kwargs["socket_connect_timeout"] == 2.0 and kwargs["socket_timeout"] == 3.0
        retry = kwargs["retry"]
        assert isinstance(retry, DeadlineRetry) and retry.budget == 7.5
        assert {ConnectionError, TimeoutError, ReadOnlyError} <= set(retry._supported_errors)
    finally:
        await client.aclose()


async def test_tls_on_a_plain_address_uses_tls_connections() -> None:
    client = redis_client(RedisConfig(address="redis.example:6379", use_tls=True))
    try:
        assert client.connection_pool.connection_class is SSLConnection
    finally:
        await client.aclose()


async def test_sentinel_config_gives_a_sentinel_managed_primary_client() -> None:
    config = RedisConfig(
        address="ignored:1",
        db=1,
        password="data-secret",
        sentinel_master_name="parley",
        sentinel_addresses=["10.0.0.1:26379", "[::1]:26380"],
        sentinel_username="watch",
        sentinel_password="sentinel-secret",
        read_timeout=1500,
    )
    client = redis_client(config)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    try:
        assert pool.service_name == "parley" and pool.is_master
        assert isinstance(client, SentinelClient), "closing it closes the sentinel connections"
        assert pool.connection_class is FollowingConnection, "reconnects ask the sentinels again"
        kwargs = pool.connection_kwargs
        assert kwargs["db"] == 1 and kwargs["password"] == "data-secret" and kwargs["socket_timeout"] == 1.5
        assert isinstance(kwargs["retry"], DeadlineRetry) and kwargs["retry"].budget == 15.0
        sentinels = pool.sentinel_manager.sentinels
        addresses = [
            (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinels
        ]
        assert addresses == [("10.0.0.1", 26379), ("::1", 26380)]
        own = sentinels[0].connection_pool.connection_kwargs
        assert (own["username"], own["password"]) == ("watch", "sentinel-secret")
        assert own["retry"].get_retries() == 0, "a dead sentinel is skipped, not retried"
    finally:
        await client.aclose()


async def test_sentinel_with_tls_uses_tls_connections() -> None:
    config = RedisConfig(sentinel_master_name="m", sentinel_addresses=["s:26379"], use_tls=True)
    client = redis_client(config)
    try:
        assert client.connection_pool.connection_class is FollowingSSLConnection
    finally:
        await client.aclose()


@pytest.mark.parametrize("sentinel", [False, True])
async def test_a_silent_primary_times_out_and_dead_connections_are_found(sentinel: bool) -> None:
    """A primary gone without a reset (powered off, partitioned) must fail a command in seconds, so
    the retry reaches the new primary: a read timeout by default, keepalive, a health check."""
    base = (
        RedisConfig(sentinel_master_name="m", sentinel_addresses=["s:26379"]) if sentinel else RedisConfig()
    )
    for read_timeout, seconds in ((None, 3.0), (0, 3.0), (1500, 1.5)):
        config = base if read_timeout is None else base.model_copy(update={"read_timeout": read_timeout})
        client = redis_client(config)
        try:
            kwargs = client.connection_pool.connection_kwargs
            assert kwargs["socket_timeout"] == seconds, "0 (or unset) means go-redis's default, 3 s"
            assert kwargs["socket_keepalive"] is True
            options = kwargs["socket_keepalive_options"]
            assert options[socket.TCP_KEEPIDLE] == 10 and options[socket.TCP_KEEPCNT] == 3
            assert kwargs["health_check_interval"] == HEALTH_CHECK_INTERVAL > 0
        finally:
            await client.aclose()


def test_sentinel_addresses_need_a_master_name_and_host_port() -> None:
    with pytest.raises(ValidationError, match="sentinel_master_name"):
        RedisConfig(sentinel_addresses=["s:26379"])
    with pytest.raises(ValidationError, match="host:port"):
        RedisConfig(sentinel_master_name="m", sentinel_addresses=["s"])
    assert not RedisConfig().uses_sentinel


async def test_deadline_retry_retries_failover_errors_until_the_budget() -> None:
    retry = DeadlineRetry(0.4, base=0.01, cap=0.05)
    attempts: list[float] = []
    failures: list[int] = []

    async def down() -> None:
        attempts.append(time.monotonic())
        raise ConnectionError("primary gone")

    async def on_fail(_error: Exception, count: int) -> None:
        failures.append(count)

    with pytest.raises(ConnectionError):
        await retry.call_with_retry(down, on_fail, with_failure_count=True)
    assert len(attempts) > 3 and failures == list(range(1, len(attempts) + 1))
    assert attempts[-1] - attempts[0] <= 0.4


async def test_deadline_retry_returns_once_the_primary_is_back() -> None:
    retry = DeadlineRetry(5.0, base=0.001, cap=0.01)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ReadOnlyError("READONLY You can't write against a read only replica.")
        return "OK"

    async def on_fail(_error: Exception) -> None:
        return None

    assert await retry.call_with_retry(flaky, on_fail) == "OK" and calls == 3


async def test_deadline_retry_does_not_retry_other_errors() -> None:
    retry = DeadlineRetry(5.0)
    calls = 0

    async def wrong() -> None:
        nonlocal calls
        calls += 1
        raise ResponseError("WRONGTYPE")

    async def on_fail(_error: Exception) -> None:
        return None

    with pytest.raises(ResponseError):
        await retry.call_with_retry(wrong, on_fail)
    assert calls == 1


async def test_zero_budget_fails_at_once() -> None:
    retry = DeadlineRetry(0.0)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise TimeoutError("slow")

    async def on_fail(_error: Exception) -> None:
        return None

    with pytest.raises(TimeoutError):
        await retry.call_with_retry(down, on_fail)
    assert calls == 1
