"""Worker choice, matching and the agent token, without any process."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from livekit.protocol import agent, models

from parley.auth import TokenVerifier
from parley.dispatch.ids import WorkerID
from parley.dispatch.records import WorkerRecord
from parley.dispatch.selection import eligible, weighted_order
from parley.dispatch.token import agent_token

pytestmark = pytest.mark.unit


def worker(wid: str, **kw: object) -> WorkerRecord:
    base: dict[str, object] = {
        "worker_id": WorkerID(wid),
        "agent_name": "",
        "namespace": "",
        "job_type": agent.JobType.JT_ROOM,
        "deployment": "",
        "version": "1.8.9",
        "permission": models.ParticipantPermission(can_publish=True, can_subscribe=True),
        "api_key": "k",
        "owner": "DIS_1",
        "reply_subject": "edge",
        "connection_id": f"c-{wid}",
        "updated_ms": 1000,
    }
    base.update(kw)
    return WorkerRecord(**base)  # type: ignore[arg-type]


def test_first_choice_is_weighted_by_one_minus_load() -> None:
    rng = random.Random(7)
    light, heavy = worker("light", load=0.1), worker("heavy", load=0.6)
    firsts = Counter(weighted_order([light, heavy], rng)[0].worker_id for _ in range(4000))
    ratio = firsts[WorkerID("light")] / firsts[WorkerID("heavy")]
    assert 2.0 < ratio < 2.9  # (1-0.1)/(1-0.6) = 2.25


def test_jobs_assigned_since_the_last_report_count_as_load() -> None:
    fresh = worker("a", load=0.2, job_count=2)
    busy = worker("b", load=0.2, job_count=2, assigned=5)
    assert busy.weight() == pytest.approx(0.3) and fresh.weight() == pytest.approx(0.8)


def test_threshold_status_and_silence_exclude_workers() -> None:
    ok = worker("ok", load=0.5)
    full = worker("full", load=0.7)
    marked_full = worker("marked", status=agent.WorkerStatus.WS_FULL)
    silent = worker("silent", updated_ms=0)
    chosen = eligible([ok, full, marked_full, silent], threshold=0.7, now_ms=5000, timeout_ms=4500)
    assert [w.worker_id for w in chosen] == ["ok"]


def test_matching_by_name_type_namespace_deployment() -> None:
    job = agent.Job(id="AJ_1", agent_name="x", type=agent.JobType.JT_PUBLISHER)
    assert worker("a", agent_name="x", job_type=agent.JobType.JT_PUBLISHER).matches(job)
    assert not worker("b", agent_name="", job_type=agent.JobType.JT_PUBLISHER).matches(job)
    assert not worker("c", agent_name="x").matches(job)
    job.namespace, job.deployment = "ns", "prod"
    assert not worker("d", agent_name="x", job_type=agent.JobType.JT_PUBLISHER).matches(job)
    assert worker(
        "e", agent_name="x", job_type=agent.JobType.JT_PUBLISHER, namespace="ns", deployment="prod"
    ).matches(job)


def test_agent_token_claims() -> None:
    job = agent.Job(id="AJ_abc", agent_name="helper")
    job.room.name = "r1"
    answer = agent.AvailabilityResponse(job_id="AJ_abc", available=True, participant_name="Helper")
    answer.participant_attributes["mood"] = "calm"
    perm = models.ParticipantPermission(can_publish=True, can_subscribe=True, can_publish_data=False)
    secret = "s" * 40
    claims = TokenVerifier({"k": secret}).verify(agent_token(job, answer, perm, "k", secret, 3600))
    assert claims.identity == "agent-AJ_abc" and claims.name == "Helper"
    assert claims.kind == "agent" and claims.participant_kind == models.ParticipantInfo.Kind.AGENT
    assert claims.attributes == {"mood": "calm", "lk.agent.name": "helper"}
    assert claims.video.room == "r1" and claims.video.flag("room_join") and claims.video.flag("agent")
    assert claims.video.publish and claims.video.subscribe and not claims.video.publish_data
    assert 3500 < claims.expires_at - claims.not_before <= 3600
