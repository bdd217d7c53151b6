"""StateReporter: reports are retried through outages until they land, in order, numbered per
reporter; answers that cannot change are dropped; one sessions snapshot is queued at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message

from parley.bus import ErrorCode, NoResponders, Rpc, RpcError, RpcTimeout
from parley.observability import TaskSet
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit


class FlakyBus:
    """Fails every request while ``down``; records the reports that landed."""

    def __init__(self) -> None:
        self.down: Exception | None = None
        self.attempts = 0
        self.landed: list[rs.SfuReport] = []
        self.refuse: set[str] = set()

    async def request(
        self, subject: str, message: Message, response_type: type[Message], **_: Any
    ) -> Message:
        self.attempts += 1
        assert subject == "parley.roomstate.Report" and isinstance(message, rs.SfuReport)
        if self.down is not None:
            raise self.down
        if message.WhichOneof("report") in self.refuse:
            raise RpcError(ErrorCode.NOT_FOUND, "participant does not exist")
        self.landed.append(message)
        return response_type()

    async def call(self, rpc: Rpc[Any, Any], message: Message, **kw: Any) -> Message:
        """``Bus.call`` as the request it makes on the wire."""
        return await self.request(rpc.subject(kw.pop("topic", "")), message, rpc.response, **kw)


@pytest_asyncio.fixture
async def reporter() -> AsyncIterator[tuple[StateReporter, FlakyBus]]:
    bus = FlakyBus()
    tasks = TaskSet("test")
    yield StateReporter(bus, tasks, retry_max=0.05), bus  # type: ignore[arg-type]
    await tasks.aclose()


@pytest.mark.parametrize(
    "failure", [RpcTimeout("t"), NoResponders("n"), RpcError("internal", "redis"), OSError()]
)
async def test_reports_survive_an_outage_in_order(
    reporter: tuple[StateReporter, FlakyBus], failure: Exception
) -> None:
    rep, bus = reporter
    bus.down = failure
    rep.active("r", "PA_a")
    rep.track_unpublished("r", "PA_a", "TR_1")
    rep.left("r", "PA_a", 1)
    await poll_until(lambda: bus.attempts >= 4, timeout=5, message="retrying")
    assert rep.pending == 3 and not bus.landed
    bus.down = None
    await poll_until(lambda: rep.pending == 0, timeout=5, message="delivered")
    assert [r.WhichOneof("report") for r in bus.landed] == [
        "participant_active",
        "track_unpublished",
        "participant_left",
    ]
    assert [r.seq for r in bus.landed] == [1, 2, 3]
    assert {r.reporter_id for r in bus.landed} == {rep.reporter_id}
    assert rep.retries >= 3


async def test_a_final_refusal_is_dropped(reporter: tuple[StateReporter, FlakyBus]) -> None:
    rep, bus = reporter
    bus.refuse = {"participant_active"}
    rep.active("r", "PA_gone")
    rep.left("r", "PA_gone", 1)
    await poll_until(lambda: rep.pending == 0, timeout=5, message="done")
    assert [r.WhichOneof("report") for r in bus.landed] == ["participant_left"]
    assert rep.retries == 0


async def test_one_sessions_snapshot_at_a_time(reporter: tuple[StateReporter, FlakyBus]) -> None:
    rep, bus = reporter
    bus.down = RpcTimeout("t")
    taken: list[int] = []

    def snapshot() -> rs.NodeSessions:
        taken.append(1)
        return rs.NodeSessions(
            node_id="N1", rooms=[rs.RoomSessions(room_name="r", participant_sids=["PA_a"])]
        )

    rep.sessions(snapshot)
    rep.sessions(snapshot)
    assert len(taken) == 1
    bus.down = None
    await poll_until(lambda: rep.pending == 0, timeout=5, message="delivered")
    rep.sessions(snapshot)
    await poll_until(lambda: rep.pending == 0, timeout=5, message="delivered again")
    assert len(taken) == 2 and [r.node_sessions.node_id for r in bus.landed] == ["N1", "N1"]
