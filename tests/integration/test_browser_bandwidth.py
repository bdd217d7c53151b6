"""Subscriber bandwidth adaptation judged by livekit-client in Chromium on a shaped link.

Ada publishes 720p simulcast from one Chromium; Bob watches from the same browser on an unshaped
link; Carol watches from a second Chromium inside a network namespace whose downlink the test
shapes with ``tc tbf``. Bob and Carol publish audio only (the page's ``?watch=1``): Ada's camera is
the only video, so what each watcher gets depends on its own link alone (with three cameras Bob's
share of his estimate went to Carol's first on a loaded machine, and two 720p encoders in one
Chromium cost the 2-core CI machine what the test is not about). The SFU estimates each subscriber's bandwidth (transport-cc feedback, a
GCC-style estimator) and its stream allocator picks the layer that fits, pausing video (and telling
the client, ``stream_state_update``) when not even the lowest layer fits; audio always flows.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parley.testing import NetNamespace, Stack, load_script, poll_until, stack_config

pytestmark = [pytest.mark.integration, pytest.mark.browser]

_browser = load_script(Path(__file__).with_name("test_browser.py"), "browser_helpers")
artifacts = _browser.artifacts
browser = _browser.browser
meet_bundle = _browser.meet_bundle
driver_deps = _browser.driver_deps

STREAM_AND_QUALITY = """((identity) => {
  const room = window.parleyRoom;
  const p = [...room.remoteParticipants.values()].find((x) => x.identity === identity);
  const pub = p && p.getTrackPublication('camera');
  return {stream: pub && pub.track ? pub.track.streamState : '', quality: room.localParticipant.connectionQuality};
})"""


async def media(page: Any, identity: str) -> dict[str, Any]:
    stats = await _browser.remote_stats(page, identity)
    state = await page.eval(f"{STREAM_AND_QUALITY}({identity!r})")
    video, audio = stats.get("video", {}), stats.get("audio", {})
    return {
        "size": (video.get("frameWidth", 0), video.get("frameHeight", 0)),
        "frames": video.get("framesDecoded", 0),
        "audio": audio.get("packetsReceived", 0),
        **state,
    }


@dataclass
class Scene:
    """What a failure message describes besides the subscriber's own view."""

    stack: Stack
    publisher: Any
    """The publishing page (a subscriber can only get the layers it sends)."""
    identity: str
    """The publisher's identity."""

    async def describe(self, subscriber: str) -> str:
        sent = _browser._describe_layers(await self.publisher.eval(_browser.PUBLISHER_LAYERS))
        lines = [
            line
            for line in self.stack.log("sfu").splitlines()
            if "stream allocation" in line and f"identity={subscriber.lower()}-" in line
        ]
        return f"the publisher sends {sent}; the SFU's last allocations: {lines[-5:]}"


async def wait_state(
    page: Any,
    scene: Scene,
    what: str,
    check: Callable[[dict[str, Any], dict[str, Any]], bool],
    timeout: float = 60,
) -> dict[str, Any]:
    """Poll until ``check(first, now)`` holds (``first``: the sample when waiting began)."""
    first = await media(page, scene.identity)
    last: dict[str, Any] = {}

    async def holds() -> bool:
        now = await media(page, scene.identity)
        last.clear()
        last.update(now)
        if not check(first, now):
            raise AssertionError(f"{page.name}: {now} (since {first}); {await scene.describe(page.name)}")
        return True

    await poll_until(holds, timeout=timeout, interval=1.0, message=f"{page.name}: {what}")
    return last


def decoding(first: dict[str, Any], now: dict[str, Any]) -> bool:
    return bool(now["frames"] >= first["frames"] + 20 and now["audio"] >= first["audio"] + 50)


async def test_a_throttled_subscriber_gets_a_lower_layer_then_pauses_then_recovers(
    make_stack: Callable[..., Stack],
    make_netns: Callable[[], NetNamespace],
    browser: Any,
    driver_deps: Path,
    artifacts: Path,
) -> None:
    ns = make_netns()
    stack = make_stack(services=_browser.BROWSER_STACK, config={"development": True, **stack_config(ns)})
    carol_browser = await _browser.Browser.launch(
        driver_deps,
        artifacts / "carol-driver.stderr.log",
        prefix=ns.prefix,
        chromium_args=ns.chromium_args(stack),
    )
    top = _browser.CAPTURE
    try:
        room = "meet-bandwidth"
        ada, ada_id = await _browser.join_meet(browser, stack, room, "Ada")
        scene = Scene(stack, ada, ada_id)
        bob, _ = await _browser.join_meet(browser, stack, room, "Bob", "watch=1")
        inside = types.SimpleNamespace(http_url=ns.http_url(stack))
        carol, _ = await _browser.join_meet(carol_browser, inside, room, "Carol", "watch=1")
        for page in (bob, carol):
            await wait_state(page, scene, "the top layer", lambda f, n: n["size"] == top and decoding(f, n))

        ns.limit(down_kbps=500)
        low = await wait_state(
            carol,
            scene,
            "a lower layer at 500 kbit/s",
            lambda f, n: 0 < n["size"][0] < top[0] and decoding(f, n),
        )
        await wait_state(
            bob, scene, "Bob keeps the top layer", lambda f, n: n["size"] == top and decoding(f, n)
        )
        await wait_state(  # a lower layer than asked for: not excellent (one video at 500 kbit/s: good)
            carol, scene, "degraded quality reported", lambda f, n: n["quality"] in ("good", "poor", "lost")
        )
        await wait_state(
            bob, scene, "good quality at Bob", lambda f, n: n["quality"] in ("good", "excellent")
        )

        ns.limit(down_kbps=100)
        await wait_state(
            carol,
            scene,
            "video paused at 100 kbit/s, audio flowing",
            lambda f, n: n["stream"] == "paused" and n["audio"] >= f["audio"] + 50,
        )
        await wait_state(
            carol, scene, "poor quality while paused", lambda f, n: n["quality"] in ("poor", "lost")
        )

        ns.unlimit()
        await wait_state(
            carol, scene, "video resumed", lambda f, n: n["stream"] == "active" and decoding(f, n)
        )
        await wait_state(
            carol,
            scene,
            "the top layer again",
            lambda f, n: n["size"] == top and decoding(f, n),
            timeout=90,
        )
        (artifacts / "summary.txt").write_text(f"at 500 kbit/s Carol decoded {low['size']}\n")
    finally:
        _browser._write_logs(
            artifacts, {f"carol-{k}": v for k, v in (await carol_browser.console_logs()).items()}
        )
        await carol_browser.aclose()
