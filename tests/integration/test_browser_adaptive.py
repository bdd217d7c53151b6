"""Adaptive media in Chromium (livekit-client): adaptive stream by element size and dynacast.

The meet page opened with ``?adaptive=1`` subscribes with livekit-client's adaptive stream: the size of
the video element a track is attached to goes to the SFU as ``UpdateTrackSettings`` (width/height,
or disabled while hidden). With ``?dynacast=1`` the publishing page obeys ``subscribed_quality_update``
and stops encoding layers no subscriber needs. The tests resize the element and read what Chromium
decodes (inbound-rtp) and sends (outbound-rtp per rid).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from parley.testing import Stack, load_script, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]

_browser = load_script(Path(__file__).with_name("test_browser.py"), "browser_helpers")
# the browser fixtures, shared with test_browser.py
artifacts = _browser.artifacts
browser = _browser.browser
meet_bundle = _browser.meet_bundle
driver_deps = _browser.driver_deps
Browser = _browser.Browser
Page = _browser.Page

SIZE_REMOTE_VIDEO = """((identity, width, height, hidden) => {
  const room = window.parleyRoom;
  const p = [...room.remoteParticipants.values()].find((x) => x.identity === identity);
  const pub = p && p.getTrackPublication('camera');
  if (!pub || !pub.track) return 0;
  for (const el of pub.track.attachedElements) {
    const tile = el.closest('.tile') || el;
    Object.assign(tile.style, {position: 'fixed', left: '0px', top: '0px', zIndex: '100', maxWidth: 'none',
                                maxHeight: 'none', width: width + 'px', height: height + 'px',
                                display: hidden ? 'none' : 'block'});
    Object.assign(el.style, {width: width + 'px', height: height + 'px', maxWidth: 'none', maxHeight: 'none',
                              objectFit: 'contain'});
  }
  return pub.track.attachedElements.length;
})"""


async def size_remote_video(page: Any, identity: str, width: int, height: int, hidden: bool = False) -> None:
    call = f"{SIZE_REMOTE_VIDEO}({identity!r}, {width}, {height}, {str(hidden).lower()})"

    async def sized() -> bool:
        return bool(await page.eval(call))

    await poll_until(sized, timeout=20, interval=0.25, message=f"{identity}'s video element on {page.name}")


async def decoded_size(page: Any, identity: str) -> tuple[tuple[int, int], int]:
    video = (await _browser.remote_stats(page, identity)).get("video", {})
    return (video.get("frameWidth", 0), video.get("frameHeight", 0)), video.get("framesDecoded", 0)


async def wait_decoding(page: Any, identity: str, publisher: Any, rid: str, timeout: float = 30) -> None:
    """``page`` decodes ``identity``'s camera at the size ``publisher`` now encodes layer ``rid`` at,
    and keeps decoding. The size is read from the publisher, not assumed: under CPU load Chromium
    scales every simulcast layer down (720p becomes 540p or 360p), and the layer is still the one
    that was asked for."""
    first: list[int] = []

    async def at_size() -> bool:
        layers = (await publisher.eval(_browser.PUBLISHER_LAYERS))["layers"]
        layer = layers.get(rid, {})
        want = (layer.get("width", 0), layer.get("height", 0))
        assert want != (0, 0), f"{publisher.name} does not encode layer {rid}: {layers}"
        others = {r: (x["width"], x["height"]) for r, x in layers.items() if r != rid}
        assert want not in others.values(), f"layer {rid} is not told apart by size: {layers}"
        got, frames = await decoded_size(page, identity)
        assert got == want, f"decoding {got}, want layer {rid} at {want} (other layers {others})"
        first.append(frames)
        return frames >= first[0] + 10

    await poll_until(
        at_size, timeout=timeout, interval=0.5, message=f"{page.name} decodes {identity}'s layer {rid}"
    )


async def wait_stalled(page: Any, identity: str, quiet_s: float = 3.0, timeout: float = 30) -> None:
    """``page`` decodes no new frame of ``identity`` for ``quiet_s`` seconds."""
    last: dict[str, float] = {}

    async def quiet() -> bool:
        _, frames = await decoded_size(page, identity)
        now = time.monotonic()
        if last.get("frames") != frames:
            last.update(frames=frames, since=now)
        return now - last["since"] >= quiet_s

    await poll_until(quiet, timeout=timeout, interval=0.5, message=f"{page.name} stops decoding {identity}")


async def test_adaptive_stream_gets_the_layer_the_element_needs(
    make_stack: Callable[..., Stack], browser: Any
) -> None:
    stack = make_stack(services=_browser.BROWSER_STACK, config=_browser.DEV)
    ada, ada_id = await _browser.join_meet(browser, stack, "meet-adaptive", "Ada")
    bob, _ = await _browser.join_meet(browser, stack, "meet-adaptive", "Bob", query="adaptive=1")
    await _browser.wait_media_flowing(bob, ada_id)

    await size_remote_video(bob, ada_id, 1280, 720)
    await wait_decoding(bob, ada_id, ada, "f")  # a large element: the top layer

    await size_remote_video(bob, ada_id, 160, 90)
    await wait_decoding(bob, ada_id, ada, "q")  # a small one: the low layer

    await size_remote_video(bob, ada_id, 160, 90, hidden=True)  # hidden: nothing at all

    await wait_stalled(bob, ada_id)

    await size_remote_video(bob, ada_id, 1280, 720)
    await wait_decoding(bob, ada_id, ada, "f")  # visible and large again: the top layer again


PERMISSION_STATE = """((identity) => {
  const room = window.parleyRoom;
  const p = [...room.remoteParticipants.values()].find((x) => x.identity === identity);
  if (!p) return null;
  return [...p.trackPublications.values()].map((pub) => ({
    kind: pub.kind, permission: pub.permissionStatus, subscribed: pub.isSubscribed}));
})"""


async def test_subscription_permissions_deny_and_then_allow(
    make_stack: Callable[..., Stack], browser: Any
) -> None:
    """Alice (Python SDK) lets only Bob (Python SDK) subscribe; Carol (livekit-client in Chromium) is
    told she is not allowed and receives nothing, until Alice allows everyone."""
    stack = make_stack(services=_browser.BROWSER_STACK, config=_browser.DEV)
    room = "meet-permissions"
    alice, bob = rtc.Room(), rtc.Room()
    bob_audio: list[int] = []
    tasks: list[asyncio.Task[None]] = []

    async def read_audio(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track):
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            bob_audio.append(int(np.abs(samples).max()) if samples.size else 0)

    def on_bob_track(track: rtc.Track, *_: Any) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            tasks.append(asyncio.create_task(read_audio(track)))

    bob.on("track_subscribed", on_bob_track)
    try:
        await alice.connect(stack.ws_url, _browser._python_token(stack, room, "alice"))
        alice.local_participant.set_track_subscription_permissions(
            allow_all_participants=False,
            participant_permissions=[
                rtc.ParticipantTrackPermission(participant_identity="bob", allow_all=True)
            ],
        )
        source = rtc.AudioSource(48000, 1)
        tasks.append(asyncio.create_task(_browser._pump_audio(source)))
        mic = rtc.LocalAudioTrack.create_audio_track("mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await alice.local_participant.publish_track(mic, opts)
        await bob.connect(stack.ws_url, _browser._python_token(stack, room, "bob"))
        carol, _ = await _browser.join_meet(browser, stack, room, "Carol")

        def bob_hears() -> bool:
            return len(bob_audio) > 50 and max(bob_audio) > 1000

        await poll_until(bob_hears, timeout=30, interval=0.25, message="Bob (allowed) hears Alice")

        async def carol_sees(permission: str, subscribed: bool) -> bool:
            state = await carol.eval(f"{PERMISSION_STATE}('alice')")
            assert state, "Carol does not see Alice yet"
            audio = next((x for x in state if x["kind"] == "audio"), None)
            assert audio == {"kind": "audio", "permission": permission, "subscribed": subscribed}, state
            return True

        await poll_until(
            lambda: carol_sees("not_allowed", False), timeout=30, interval=0.5, message="Carol is refused"
        )
        stats = await _browser.remote_stats(carol, "alice")
        assert "audio" not in stats, stats  # no media reached her

        alice.local_participant.set_track_subscription_permissions(allow_all_participants=True)
        await poll_until(
            lambda: carol_sees("allowed", True), timeout=30, interval=0.5, message="Carol is allowed"
        )

        async def carol_receives() -> bool:
            s = await _browser.remote_stats(carol, "alice")
            return bool(s.get("audio", {}).get("packetsReceived", 0) > 50)

        await poll_until(carol_receives, timeout=30, interval=0.5, message="Carol receives Alice's audio")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bob.disconnect()
        await alice.disconnect()


async def layer_frames(page: Any, rid: str) -> int:
    sample = await page.eval(_browser.PUBLISHER_LAYERS)
    return int(sample["layers"].get(rid, {}).get("frames", 0))


async def wait_layer(
    page: Any, rid: str, *, sending: bool, quiet_s: float = 3.0, timeout: float = 30
) -> None:
    """``sending``: the publisher's ``rid`` layer grows by 10 frames; else: no new frame for ``quiet_s``."""
    seen: dict[str, float] = {}

    async def check() -> bool:
        frames = await layer_frames(page, rid)
        now = time.monotonic()
        if "first" not in seen:
            seen.update(first=frames, frames=frames, since=now)
        if sending:
            return frames >= seen["first"] + 10
        if frames != seen["frames"]:
            seen.update(frames=frames, since=now)
        return now - seen["since"] >= quiet_s

    state = "sends" if sending else "stops sending"
    await poll_until(check, timeout=timeout, interval=0.5, message=f"{page.name} {state} layer {rid}")


async def test_dynacast_pauses_layers_nobody_watches(make_stack: Callable[..., Stack], browser: Any) -> None:
    """Ada publishes with dynacast; Bob watches her in a small element (LOW only): Ada stops encoding
    her top layer; when Bob enlarges the element, Ada sends the top layer again within seconds."""
    stack = make_stack(services=_browser.BROWSER_STACK, config=_browser.DEV)
    ada, ada_id = await _browser.join_meet(browser, stack, "meet-dynacast", "Ada", query="dynacast=1")
    bob, _ = await _browser.join_meet(browser, stack, "meet-dynacast", "Bob", query="adaptive=1")
    await _browser.wait_media_flowing(bob, ada_id)
    await wait_layer(ada, "f", sending=True)

    await size_remote_video(bob, ada_id, 160, 90)
    await wait_decoding(bob, ada_id, ada, "q")
    await wait_layer(ada, "f", sending=False, timeout=30)  # the SFU waits 5 s before pausing a layer
    await wait_layer(ada, "q", sending=True)  # the layer Bob watches keeps flowing

    await size_remote_video(bob, ada_id, 1280, 720)
    await wait_layer(ada, "f", sending=True, timeout=20)
    await wait_decoding(bob, ada_id, ada, "f")
