"""parley.testing.NetNamespace: shaped, lossy and cut links to a peer in its own network namespace.

A TCP transfer into (and out of) a namespace runs at the tc rate it was limited to; iptables drops
the given share of datagrams, or all UDP; an official Python SDK participant and Chromium (the meet
page) inside a namespace join the stack over the veth link and hear a tone published from outside;
nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parley.testing import NetNamespace, Stack, load_script, poll_until, stack_config
from parley.testing.netns import leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")
browser_tests = load_script(Path(__file__).with_name("test_browser.py"), "browser_tests")
# The browser tests' fixtures (build the meet page and the driver; an artifacts directory), shared.
meet_bundle = browser_tests.meet_bundle
driver_deps = browser_tests.driver_deps
artifacts = browser_tests.artifacts

SERVICES = ["room-state", "sfu", "signaling"]
SO_RCVBUFFORCE = 33
"""Linux: a receive buffer above rmem_max (root), so 1000 back-to-back datagrams all fit."""

# The inside end of a TCP transfer: "D" receives for warm+secs and prints kbit/s over the last secs;
# "U" sends for warm+secs (the host measures, as a sender's count would include its socket buffer).
TCP_PEER = """
import socket, sys, time
mode, host, port, warm, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
s = socket.create_connection((host, port), timeout=10)
s.sendall(mode.encode())
start = time.monotonic()
counted = 0
if mode == "D":
    while time.monotonic() < start + warm + secs:
        data = s.recv(65536)
        if not data:
            break
        if time.monotonic() >= start + warm:
            counted += len(data)
    print(counted * 8 / secs / 1000, flush=True)
else:
    chunk = bytes(16384)
    while time.monotonic() < start + warm + secs:
        s.sendall(chunk)
s.close()
"""

# The inside end of the UDP tests: prints its port, echoes every datagram.
UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""


class _Meter(asyncio.Protocol):
    """The host end of a TCP transfer: after the mode byte, sends zeros ("D") or counts arrivals ("U")."""

    def __init__(self, arrivals: list[tuple[float, int]]) -> None:
        self.arrivals = arrivals
        self.mode = b""
        self.paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.mode:
            self.mode, data = data[:1], data[1:]
            if self.mode == b"D":
                self._fill()
        if self.mode == b"U":
            self.arrivals.append((time.monotonic(), len(data)))

    def _fill(self) -> None:
        """Write until the transport pushes back; yield to the loop between chunks."""
        if self.transport is None or self.transport.is_closing() or self.paused:
            return
        self.transport.write(bytes(65536))
        asyncio.get_running_loop().call_soon(self._fill)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._fill()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _transfer_kbps(ns: NetNamespace, mode: str, warm: float = 1.0, secs: float = 3.0) -> float:
    """kbit/s of a TCP transfer into ("D") or out of ("U") the namespace, after ``warm`` seconds."""
    arrivals: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Meter(arrivals), ns.host_ip, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        args = [mode, ns.host_ip, str(port), str(warm), str(secs)]
        proc = await asyncio.create_subprocess_exec(
            *ns.prefix, sys.executable, "-c", TCP_PEER, *args, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), warm + secs + 20)
        assert proc.returncode == 0, out
    finally:
        server.close()
    if mode == "D":
        return float(out.decode())
    start = arrivals[0][0] + warm
    counted = sum(n for t, n in arrivals if start <= t < start + secs)
    return counted * 8 / secs / 1000


async def test_limit_shapes_tcp_down_and_up(make_netns: Callable[[], NetNamespace]) -> None:
    ns = make_netns()
    ns.limit(down_kbps=500, up_kbps=300)
    down = await _transfer_kbps(ns, "D")
    up = await _transfer_kbps(ns, "U")
    assert 350 <= down <= 560, f"downlink limited to 500 kbit/s measured {down:.0f}"
    assert 200 <= up <= 340, f"uplink limited to 300 kbit/s measured {up:.0f}"

    ns.unlimit()
    fast = await _transfer_kbps(ns, "D", warm=0.3, secs=1.0)
    assert fast > 20_000, f"unlimited downlink measured {fast:.0f} kbit/s"


class _Echoes(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.append(data)


async def test_loss_and_block_udp_drop_datagrams(make_netns: Callable[[], NetNamespace]) -> None:
    ns = make_netns()
    echo = ns.popen([sys.executable, "-c", UDP_ECHO], stdout=subprocess.PIPE)
    assert echo.stdout is not None
    port = int(await asyncio.to_thread(echo.stdout.readline))
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    sock.bind((ns.host_ip, 0))
    transport, echoes = await loop.create_datagram_endpoint(_Echoes, sock=sock)
    target = (ns.ns_ip, port)

    async def round_trip(marker: bytes) -> None:
        """Send ``marker`` (again on every poll) until its echo is back: what was sent before is in."""

        def back() -> bool:
            transport.sendto(marker, target)
            return marker in echoes.received

        await poll_until(back, timeout=10, interval=0.1, message=f"the echo of {marker!r}")

    try:
        await round_trip(b"hello")
        with ns.udp_blocked():
            for i in range(50):
                transport.sendto(b"blocked-%d" % i, target)
        await round_trip(b"after-block")
        assert not [d for d in echoes.received if d.startswith(b"blocked-")]

        ns.loss(0.3, "down")
        for i in range(1000):
            transport.sendto(b"lossy-%d" % i, target)
        ns.loss(0)
        await round_trip(b"after-loss")
        through = len({d for d in echoes.received if d.startswith(b"lossy-")})
        assert 600 <= through <= 800, f"{through} of 1000 datagrams passed 30% loss"
    finally:
        transport.close()
        echo.kill()
        echo.wait()


async def test_sdk_participant_inside_a_namespace_hears_a_tone(
    make_stack: Callable[..., Stack], make_netns: Callable[[], NetNamespace]
) -> None:
    """The listener reaches the edge and the SFU only through the veth link, at 500 kbit/s down."""
    ns = make_netns()
    stack = make_stack(services=SERVICES, config=stack_config(ns))
    ns.limit(down_kbps=500)
    python = str(runner.PYTHONS["sdk-1.2"])
    base = {"key": stack.api_key, "secret": stack.api_secret, "room": f"netns-{uuid.uuid4().hex[:8]}"}
    speaker = asyncio.create_task(
        runner.run_scenario(python, "tone_speaker", {**base, "url": stack.ws_url}, timeout=60)
    )
    try:
        listener = await runner.run_scenario(
            python, "tone_listener", {**base, "url": ns.ws_url(stack)}, timeout=60, prefix=ns.prefix
        )
    finally:
        spoke = await speaker
    assert abs(listener["frequency"] - 440) < 5, listener
    assert (listener["local_address"], listener["remote_address"]) == (ns.ns_ip, ns.host_ip), listener
    assert spoke == {"listener_seen": True, "listener_left": True, "sdk_version": spoke["sdk_version"]}


SELECTED_PAIR = """(async () => {
  const p = Array.from(window.parleyRoom.remoteParticipants.values())[0];
  const pub = Array.from(p.trackPublications.values()).find((t) => t.track);
  const report = await pub.track.getRTCStatsReport();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  for (const s of byId.values()) {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      return [byId.get(s.localCandidateId).address, byId.get(s.remoteCandidateId).address];
    }
  }
  return [];
})()"""
"""(local, remote) address of the nominated ICE pair that carries the remote track."""


@pytest.mark.browser
async def test_chromium_inside_a_namespace_joins_the_meet_page_and_hears_a_tone(
    make_stack: Callable[..., Stack],
    make_netns: Callable[[], NetNamespace],
    driver_deps: Path,
    meet_bundle: Path,
    artifacts: Path,
) -> None:
    ns = make_netns()
    stack = make_stack(services=SERVICES, config={"development": True, **stack_config(ns)})
    ns.limit(down_kbps=500)
    browser = await browser_tests.Browser.launch(
        driver_deps, artifacts / "driver.stderr.log", prefix=ns.prefix, chromium_args=ns.chromium_args(stack)
    )
    room = f"netns-{uuid.uuid4().hex[:8]}"
    try:
        # join_meet opens ``stack.http_url``: here the edge as seen from inside the namespace.
        inside = types.SimpleNamespace(http_url=ns.http_url(stack))
        page, identity = await browser_tests.join_meet(browser, inside, room, "Ada")
        args = {"key": stack.api_key, "secret": stack.api_secret, "room": room, "url": stack.ws_url}
        speaker = asyncio.create_task(
            runner.run_scenario(
                str(runner.PYTHONS["sdk-1.2"]), "tone_speaker", {**args, "listener": identity}, timeout=60
            )
        )

        async def hears() -> bool:
            stats = await browser_tests.remote_stats(page, "speaker")
            assert "audio" in stats, f"no audio from speaker yet: {stats}"
            return bool(stats["audio"]["packetsReceived"] >= 100)

        try:
            await poll_until(hears, timeout=30, interval=0.25, message="the page receives the tone")
            assert await page.eval(SELECTED_PAIR) == [ns.ns_ip, ns.host_ip]
            await page.click("#leave-button")
        finally:
            spoke = await speaker
        assert spoke["listener_seen"] and spoke["listener_left"], spoke
    finally:
        browser_tests._write_logs(artifacts, await browser.console_logs())
        await browser.aclose()


def test_close_deletes_everything_even_after_a_failure_and_stale_leftovers_go() -> None:
    with pytest.raises(RuntimeError, match="the test failed"), NetNamespace() as ns:
        sleeper = ns.popen(["sleep", "60"])
        raise RuntimeError("the test failed")
    assert sleeper.wait(timeout=10) != 0, "the process inside was killed"
    assert ns.name not in leftovers() and ns.host_link not in leftovers()

    # A namespace of a test process that died (SIGKILL, no atexit) is removed by the next one.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"parley-t-{dead.pid}-16383"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    subprocess.run(
        ["ip", "link", "add", "plyv16383", "type", "veth", "peer", "name", "eth0", "netns", stale], check=True
    )
    with NetNamespace() as fresh:
        assert stale not in leftovers() and "plyv16383" not in leftovers()
        assert fresh.name in leftovers()
    assert fresh.name not in leftovers()
