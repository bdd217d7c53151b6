"""turn-alloc's pure parts: REST credentials, URLs, region order, health transitions, quota, answer."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import redis.asyncio as aioredis

from parley.bus import ErrorCode, RpcError
from parley.config.sections import TurnServerConfig
from parley.devprocs.processes import free_port
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.turn_alloc.allocator import IceServerAllocator, by_region, turn_urls
from parley.turn_alloc.config import TurnAllocConfig
from parley.turn_alloc.credentials import mint, rest_user
from parley.turn_alloc.health import HealthMonitor
from parley.turn_alloc.quota import MemoryQuota, RedisQuota
from parley.turn_alloc.stun import ProbeFailed

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def test_rest_credential_is_expiry_colon_user_and_hmac_sha1() -> None:
    cred = mint("s3cret", "PA_abc", expires_at=1_800_000_300)
    assert cred.username == "1800000300:PA_abc"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1800000300:PA_abc", hashlib.sha1).digest()).decode()
    assert cred.password == expected
    assert len(base64.b64decode(cred.password)) == 20


def test_rest_user_prefers_sid_and_strips_separators() -> None:
    assert rest_user("PA_1", "alice") == "PA_1"
    assert rest_user("", "al:ice/ü") == "al_ice__"
    assert len(rest_user("", "x" * 400)) == 128


def test_urls_for_each_transport() -> None:
    server = TurnServerConfig(host="turn.example", port=3478, tls_port=5349, transports=["udp", "tcp", "tls"])
    assert turn_urls(server) == [
        "turn:turn.example:3478?transport=udp",
        "turn:turn.example:3478?transport=tcp",
        "turns:turn.example:5349?transport=tcp",
    ]
    assert turn_urls(TurnServerConfig(host="::1", transports=["udp"])) == ["turn:[::1]:3478?transport=udp"]
    assert turn_urls(TurnServerConfig(host="h", transports=["tls"])) == []  # tls without tls_port


def test_region_first_then_others_in_config_order() -> None:
    a, b, c = (TurnServerConfig(host=h, region=r) for h, r in (("a", "eu"), ("b", "us"), ("c", "eu")))
    assert by_region([a, b, c], "us") == [b, a, c]
    assert by_region([a, b, c], "eu") == [a, c, b]
    assert by_region([a, b, c], "") == [a, b, c]
    assert by_region([a, b, c], "ap") == [a, b, c]


async def test_health_unhealthy_after_consecutive_failures_and_back_on_success() -> None:
    server = TurnServerConfig(host="h")
    answers: list[bool] = []

    async def prober(_: TurnServerConfig, __: float) -> None:
        if not answers.pop(0):
            raise ProbeFailed("down")

    monitor = HealthMonitor([server], interval=1.0, timeout=1.0, unhealthy_after=2, prober=prober)
    answers += [False, True, False, False, True]
    await monitor.probe_all()
    assert monitor.healthy() == [server]  # one failure is not enough
    await monitor.probe_all()
    await monitor.probe_all()
    assert monitor.healthy() == [server]  # the success reset the count
    await monitor.probe_all()
    assert monitor.healthy() == []
    await monitor.probe_all()
    assert monitor.healthy() == [server]


async def test_memory_quota_counts_live_credentials_only() -> None:
    quota = MemoryQuota()
    assert await quota.take("p", expires_at=NOW * 2, limit=2)
    assert await quota.take("p", expires_at=NOW * 2, limit=2)
    assert not await quota.take("p", expires_at=NOW * 2, limit=2)
    assert await quota.take("q", expires_at=NOW * 2, limit=2)
    expired = MemoryQuota()
    assert await expired.take("p", expires_at=1.0, limit=1)
    assert await expired.take("p", expires_at=NOW * 2, limit=1)  # the first one has expired


def _config(**turn: object) -> TurnAllocConfig:
    return TurnAllocConfig.model_validate(
        {
            "development": True,
            "rtc": {"stun_servers": ["stun:stun.example:3478"]},
            "turn": {
                "enabled": True,
                "secret": "shared",
                "servers": [
                    {"host": "eu.turn", "region": "eu", "transports": ["udp"]},
                    {"host": "us.turn", "region": "us", "transports": ["tcp"], "secret": "own"},
                ],
                **turn,
            },
        }
    )


async def test_answer_orders_regions_mints_per_server_and_enforces_quota() -> None:
    config = _config(force_relay=True, max_allocations_per_participant=2, credential_ttl=300)
    monitor = HealthMonitor(config.turn.servers, interval=1.0, timeout=1.0, unhealthy_after=1)
    allocator = IceServerAllocator(config, monitor, MemoryQuota(), clock=lambda: NOW)
    request = turn_pb2.IceServersRequest(
        room_name="r", participant_identity="alice", participant_sid="PA_a", region="us"
    )
    answer = await allocator.ice_servers(request)
    assert [list(s.urls) for s in answer.ice_servers] == [
        ["turn:us.turn:3478?transport=tcp"],
        ["turn:eu.turn:3478?transport=udp"],
        ["stun:stun.example:3478"],
    ]
    us, eu, stun = answer.ice_servers
    assert us.username == eu.username == f"{int(NOW) + 300}:PA_a"
    assert us.credential == mint("own", "PA_a", expires_at=int(NOW) + 300).password
    assert eu.credential == mint("shared", "PA_a", expires_at=int(NOW) + 300).password
    assert not stun.username
    assert answer.force_relay
    await allocator.ice_servers(request)
    with pytest.raises(RpcError) as exc:
        await allocator.ice_servers(request)
    assert exc.value.code is ErrorCode.RESOURCE_EXHAUSTED
    other = turn_pb2.IceServersRequest(room_name="r", participant_identity="bob", participant_sid="PA_b")
    assert len((await allocator.ice_servers(other)).ice_servers) == 3


async def test_no_force_relay_without_a_turn_server_and_stun_only_when_disabled() -> None:
    async def down(_: TurnServerConfig, __: float) -> None:
        raise ProbeFailed("down")

    config = _config(force_relay=True)
    monitor = HealthMonitor(config.turn.servers, interval=1.0, timeout=1.0, unhealthy_after=1, prober=down)
    await monitor.probe_all()
    answer = await IceServerAllocator(config, monitor, MemoryQuota()).ice_servers(
        turn_pb2.IceServersRequest(room_name="r", participant_identity="a")
    )
    assert [list(s.urls) for s in answer.ice_servers] == [["stun:stun.example:3478"]]
    assert not answer.force_relay
    disabled = _config(enabled=False)
    answer = await IceServerAllocator(
        disabled, HealthMonitor([], interval=1, timeout=1, unhealthy_after=1), MemoryQuota()
    ).ice_servers(turn_pb2.IceServersRequest(room_name="r"))
    assert [list(s.urls) for s in answer.ice_servers] == [["stun:stun.example:3478"]]


def test_config_requires_a_secret_per_server() -> None:
    with pytest.raises(ValueError, match=r"turn.servers.0.secret"):
        TurnAllocConfig.model_validate(
            {"development": True, "turn": {"enabled": True, "servers": [{"host": "h"}]}}
        )


async def test_redis_quota_fails_open_when_redis_is_unreachable() -> None:
    quota = RedisQuota(aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"), "parley")
    try:
        assert await quota.take("p", expires_at=NOW * 2, limit=1)
    finally:
        await quota.aclose()
