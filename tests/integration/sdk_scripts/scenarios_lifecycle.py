"""SDK scenarios about a participant that vanishes: its process is killed (SIGKILL: the kernel closes its
sockets) or frozen (SIGSTOP: nothing more is sent, the sockets stay open)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from livekit import api, rtc
from sdk_helpers import SAMPLE_RATE, connect, play_tone, receive_audio, track_of, wait_for

SCRIPT = Path(__file__).with_name("scenarios.py")


async def victim(args: dict[str, Any]) -> dict[str, Any]:
    """Connect, publish a tone, say READY, then live until killed."""
    room = await connect(args, "victim")
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    stop = asyncio.Event()
    tone = asyncio.create_task(play_tone(source, stop))
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    print("READY", flush=True)
    await tone  # never ends: the test kills this process
    return {}


async def _identities(args: dict[str, Any]) -> list[str]:
    lk = api.LiveKitAPI(args["url"].replace("ws://", "http://"), args["key"], args["secret"])
    try:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=args["room"]))
    finally:
        await lk.aclose()
    return sorted(p.identity for p in listed.participants)


async def dropped(args: dict[str, Any]) -> dict[str, Any]:
    """B hears the victim, then the victim's process gets ``args["signal"]`` (KILL or STOP); B sees it
    leave and the Room API stops listing it. Reports how long both took."""
    b = await connect(args, "bob")
    left: dict[str, float] = {}
    reasons: dict[str, int] = {}

    def on_left(p: rtc.RemoteParticipant) -> None:
        left.setdefault(p.identity, time.monotonic())
        reasons[p.identity] = int(getattr(p, "disconnect_reason", -1) or 0)

    b.on("participant_disconnected", on_left)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "victim",
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 40)
        if line.strip() != b"READY":
            raise RuntimeError(f"victim did not start: {line!r}")
        heard = await wait_for(lambda: track_of(b, "victim", rtc.TrackKind.KIND_AUDIO), 20, "victim at bob")
        freq = await asyncio.wait_for(receive_audio(heard, 0.3), 15)
        listed_before = await _identities(args)
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL if args["signal"] == "KILL" else signal.SIGSTOP)
        await wait_for(lambda: "victim" in left, 45, "victim left at bob")
        seen_after = left["victim"] - started
        listed_after = await _identities(args)
        while "victim" in listed_after and time.monotonic() - started < 60:
            await asyncio.sleep(0.2)
            listed_after = await _identities(args)
        api_after = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    await b.disconnect()
    return {
        "frequency": freq,
        "listed_before": listed_before,
        "listed_after": listed_after,
        "seen_after_s": seen_after,
        "api_after_s": api_after,
        "reason": reasons.get("victim", -1),
    }


SCENARIOS = {"victim": victim, "dropped": dropped}
