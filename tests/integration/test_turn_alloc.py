"""turn-alloc against real coturn on loopback: its credentials work until they expire, a wrong secret
is refused, a stopped coturn stops being handed out (and comes back), regions come first, the
quota holds. Every coturn is a real ``turnserver``; every allocation is a real TURN Allocate."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aioice import stun, turn

from parley.bus import ErrorCode, NatsBus, RpcError, connect, rpcs
from parley.devprocs.coturn import Coturn
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.testing import Stack, poll_until

pytestmark = pytest.mark.integration

SECRET = "coturn-shared-secret-for-tests-0123"
CoturnFactory = Callable[..., Coturn]


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[CoturnFactory]:
    started: list[Coturn] = []

    def factory(secret: str = SECRET, **options: Any) -> Coturn:
        server = Coturn(secret, log_path=tmp_path / f"coturn{len(started)}.log", **options)
        started.append(server)
        server.start()
        return server

    yield factory
    for server in started:
        server.close()


def turn_config(servers: list[dict[str, Any]], **turn_keys: Any) -> dict[str, Any]:
    return {"turn": {"enabled": True, "secret": SECRET, "servers": servers, **turn_keys}}


def start_turn_alloc(make_stack: Callable[..., Stack], config: dict[str, Any], *overrides: str) -> Stack:
    return make_stack(
        services=["turn-alloc"],
        config=config,
        instance_overrides={"turn-alloc": [list(overrides)]},
    )


@pytest_asyncio.fixture
async def client_bus() -> AsyncIterator[Callable[[Stack], Any]]:
    buses: list[NatsBus] = []

    async def open_bus(stack: Stack) -> NatsBus:
        assert stack.nats is not None
        bus = await connect(stack.nats.url, "turn-test")
        buses.append(bus)
        return bus

    yield open_bus
    for bus in buses:
        await bus.aclose()


async def ice_servers(
    bus: NatsBus, identity: str = "alice", *, room: str = "room", sid: str = "", region: str = ""
) -> turn_pb2.IceServersResponse:
    request = turn_pb2.IceServersRequest(
        room_name=room, participant_identity=identity, participant_sid=sid, region=region
    )
    return await bus.call(rpcs.ICE_SERVERS, request, timeout=10)


def ports(answer: turn_pb2.IceServersResponse) -> list[int]:
    """The TURN port of each TURN ICE server in the answer, in order."""
    return [int(s.urls[0].split(":")[2].split("?")[0]) for s in answer.ice_servers if s.username]


async def allocate(port: int, username: str, password: str, transport: str = "udp") -> tuple[str, int] | int:
    """A real TURN Allocate: the relayed address, or the STUN error code of the refusal."""
    try:
        relay, _ = await asyncio.wait_for(
            turn.create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", port), username, password, transport=transport
            ),
            timeout=10,
        )
    except stun.TransactionFailed as exc:
        return int(exc.response.attributes["ERROR-CODE"][0])
    address: tuple[str, int] = relay.get_extra_info("sockname")
    relay.close()
    return address


async def test_credentials_get_an_allocation_until_they_expire_and_a_wrong_secret_is_refused(
    coturn: CoturnFactory, make_stack: Callable[..., Stack], client_bus: Callable[[Stack], Any]
) -> None:
    server = coturn()
    # The same coturn twice: once with its secret, once with a wrong one (e.g. after a rotation).
    config = turn_config(
        [
            {"host": "127.0.0.1", "port": server.port, "region": "good"},
            {"host": "127.0.0.1", "port": server.port, "region": "wrong", "secret": "not-the-coturn-secret"},
        ],
        credential_ttl=10,
    )
    bus = await client_bus(start_turn_alloc(make_stack, config))
    answer = await ice_servers(bus, sid="PA_alice", region="good")
    good, wrong = answer.ice_servers
    assert list(good.urls) == [
        f"turn:127.0.0.1:{server.port}?transport=udp",
        f"turn:127.0.0.1:{server.port}?transport=tcp",
    ]
    expiry, user = good.username.split(":")
    assert user == "PA_alice" and 8 <= int(expiry) - time.time() <= 11

    for transport in ("udp", "tcp"):
        relayed = await allocate(server.port, good.username, good.credential, transport)
        assert isinstance(relayed, tuple) and relayed[0] == "127.0.0.1", relayed
    assert await allocate(server.port, wrong.username, wrong.credential) == 401

    async def refused() -> bool:
        return await allocate(server.port, good.username, good.credential) == 401

    await poll_until(refused, timeout=30, interval=1.0, message="coturn refusing the expired credential")
    assert time.time() >= int(expiry)
    assert f"<{good.username}>" in server.log_text()


async def test_stopped_coturn_is_not_handed_out_until_it_answers_again(
    coturn: CoturnFactory, make_stack: Callable[..., Stack], client_bus: Callable[[Stack], Any]
) -> None:
    # One probed over UDP, one that offers only TCP (probed over TCP).
    first, second = coturn(), coturn(udp=False)
    config = turn_config(
        [
            {"host": "127.0.0.1", "port": first.port, "transports": ["udp"]},
            {"host": "127.0.0.1", "port": second.port, "transports": ["tcp"]},
        ],
        health_interval=0.3,
    )
    stack = start_turn_alloc(
        make_stack, config, "turn_alloc.probe_timeout=0.5", "turn_alloc.unhealthy_after=2"
    )
    bus = await client_bus(stack)
    both = [first.port, second.port]
    assert ports(await ice_servers(bus, "a")) == both

    polls = itertools.count()

    async def handed_out(expected: list[int]) -> bool:
        # A new participant each time: the quota must not end the wait.
        return ports(await ice_servers(bus, f"poll-{next(polls)}")) == expected

    first.stop()
    await poll_until(
        lambda: handed_out([second.port]), timeout=20, interval=0.2, message="UDP coturn dropped"
    )
    assert "TURN server unhealthy" in stack.log("turn-alloc")

    first.start()
    await poll_until(lambda: handed_out(both), timeout=20, interval=0.2, message="UDP coturn back")
    assert "TURN server healthy again" in stack.log("turn-alloc")
    # What it hands out after the restart really works.
    answer = await ice_servers(bus, "d")
    relayed = await allocate(first.port, answer.ice_servers[0].username, answer.ice_servers[0].credential)
    assert isinstance(relayed, tuple)

    second.stop()
    await poll_until(lambda: handed_out([first.port]), timeout=20, interval=0.2, message="TCP coturn dropped")
    second.start()
    await poll_until(lambda: handed_out(both), timeout=20, interval=0.2, message="TCP coturn back")


async def test_servers_of_the_clients_region_come_first(
    coturn: CoturnFactory, make_stack: Callable[..., Stack], client_bus: Callable[[Stack], Any]
) -> None:
    eu, us = coturn(), coturn()
    config = turn_config(
        [
            {"host": "127.0.0.1", "port": eu.port, "region": "eu-west"},
            {"host": "127.0.0.1", "port": us.port, "region": "us-east"},
        ]
    )
    bus = await client_bus(start_turn_alloc(make_stack, config))
    assert ports(await ice_servers(bus, "a", region="us-east")) == [us.port, eu.port]
    assert ports(await ice_servers(bus, "b", region="eu-west")) == [eu.port, us.port]
    assert ports(await ice_servers(bus, "c", region="ap-south")) == [eu.port, us.port]
    # The first server of each answer allocates with the credentials that came with it.
    answer = await ice_servers(bus, "d", region="us-east")
    first = answer.ice_servers[0]
    assert isinstance(await allocate(us.port, first.username, first.credential), tuple)


async def test_quota_per_participant_within_the_credential_lifetime(
    coturn: CoturnFactory, make_stack: Callable[..., Stack], client_bus: Callable[[Stack], Any]
) -> None:
    server = coturn()
    config = turn_config(
        [{"host": "127.0.0.1", "port": server.port}], max_allocations_per_participant=3, credential_ttl=10
    )
    config["rtc"] = {"stun_servers": [f"stun:127.0.0.1:{server.port}"]}
    bus = await client_bus(start_turn_alloc(make_stack, config))
    for _ in range(3):
        answer = await ice_servers(bus, "alice")
        assert [s.urls[0].split(":")[0] for s in answer.ice_servers] == ["turn", "stun"]
    with pytest.raises(RpcError) as exc:
        await ice_servers(bus, "alice")
    assert exc.value.code is ErrorCode.RESOURCE_EXHAUSTED
    # Other participants, and the same identity in another room, have their own quota.
    assert ports(await ice_servers(bus, "bob")) == [server.port]
    assert ports(await ice_servers(bus, "alice", room="other-room")) == [server.port]

    async def alice_again() -> bool:
        try:
            return bool(ports(await ice_servers(bus, "alice")))
        except RpcError as err:
            assert err.code is ErrorCode.RESOURCE_EXHAUSTED
            return False

    started = time.monotonic()
    await poll_until(
        alice_again, timeout=30, interval=0.5, message="alice's quota freed when credentials expire"
    )
    assert time.monotonic() - started > 5
