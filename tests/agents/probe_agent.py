"""A livekit-agents 1.8 worker for the dispatch tests: ``python probe_agent.py start``.

Env: LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET, and
  PROBE_PORT       the worker's HTTP port (127.0.0.1)
  PROBE_AGENT_NAME agent_name to register ("" = automatic dispatch)
  PROBE_JOB_LOG    file that gets one JSON line per job event (job, connected, shutdown)
  PROBE_CONNECT    "1": join the job's room (needs the SFU); else hold the job without joining
  PROBE_CAPACITY   jobs at which the worker reports load 1.0 (load = jobs / capacity; 10)
  PROBE_EXECUTOR   "thread" (default, cheap) or "process"
  PROBE_IDLE       idle job executors kept warm (1). livekit-agents counts each job accepted but not
                   yet running as load_threshold / PROBE_IDLE, so with 1 a worker without running
                   jobs declines every other offer that arrives while one is pending
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from livekit.agents import AgentServer, JobContext, JobExecutorType, cli

LOG = os.environ.get("PROBE_JOB_LOG", "")
CAPACITY = float(os.environ.get("PROBE_CAPACITY", "10") or 10)


def record(kind: str, ctx: JobContext, **extra: Any) -> None:
    if not LOG:
        return
    job = ctx.job
    line = {
        "event": kind,
        "pid": os.getpid(),
        "job_id": job.id,
        "dispatch_id": job.dispatch_id,
        "room": job.room.name,
        "type": int(job.type),
        "agent_name": job.agent_name,
        "metadata": job.metadata,
        "participant": job.participant.identity,
        "worker_id": ctx.worker_id,
        "at": time.time(),
        **extra,
    }
    with open(LOG, "a") as f:
        f.write(json.dumps(line) + "\n")


server = AgentServer(
    host="127.0.0.1",
    port=int(os.environ.get("PROBE_PORT", "0")),
    job_executor_type=JobExecutorType.PROCESS
    if os.environ.get("PROBE_EXECUTOR") == "process"
    else JobExecutorType.THREAD,
    num_idle_processes=int(os.environ.get("PROBE_IDLE", "1") or 1),
    # load by job count, not the default CPU load (a busy test machine would look full)
    load_fnc=lambda s: min(1.0, len(s.active_jobs) / CAPACITY),
    load_threshold=0.95,
)


@server.rtc_session(agent_name=os.environ.get("PROBE_AGENT_NAME", ""))
async def entrypoint(ctx: JobContext) -> None:
    record("job", ctx)
    ctx.add_shutdown_callback(lambda reason: _on_shutdown(ctx, reason))
    if os.environ.get("PROBE_CONNECT") == "1":
        await ctx.connect()
        record("connected", ctx, identity=ctx.room.local_participant.identity)
        return
    await asyncio.Event().wait()  # hold the job until the server terminates it


async def _on_shutdown(ctx: JobContext, reason: str) -> None:
    record("shutdown", ctx, reason=reason)


if __name__ == "__main__":
    cli.run_app(server)
