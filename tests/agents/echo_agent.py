"""An agent that plays back every audio track it hears: ``python echo_agent.py start``.

Env: LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET, ECHO_PORT (worker HTTP port),
ECHO_AGENT_NAME (default "" = automatic dispatch).
"""

from __future__ import annotations

import asyncio
import os

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobExecutorType, cli

server = AgentServer(
    host="127.0.0.1",
    port=int(os.environ.get("ECHO_PORT", "0")),
    job_executor_type=JobExecutorType.THREAD,
    num_idle_processes=1,
    # load by job count, not the default CPU load (a busy test machine would look full)
    load_fnc=lambda s: min(1.0, len(s.active_jobs) / 10),
    load_threshold=0.95,
)


@server.rtc_session(agent_name=os.environ.get("ECHO_AGENT_NAME", ""))
async def entrypoint(ctx: JobContext) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def echo(track: rtc.RemoteAudioTrack) -> None:
        source = rtc.AudioSource(48000, 1)
        local = rtc.LocalAudioTrack.create_audio_track("echo", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await ctx.room.local_participant.publish_track(local, options)
        async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
            await source.capture_frame(event.frame)

    @ctx.room.on("track_subscribed")
    def on_track(
        track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            task = asyncio.create_task(echo(track))  # type: ignore[arg-type]
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)


if __name__ == "__main__":
    cli.run_app(server)
