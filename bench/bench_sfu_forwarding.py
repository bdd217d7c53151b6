"""SFU forwarding capacity: forwarded packets/s per SFU core in an audio room (N speakers, M listeners).

Three processes: this one orchestrates; the SFU (parley.sfu.media UpTracks/DownTracks, uvloop) and the
clients (N aiortc publishers sending Opus-sized RTP, M aiortc subscribers counting it; uvloop) each
run in their own process and exchange SDP over a pipe. Speakers send synthetic RTP (no encoding),
like LiveKit's ``lk load-test`` audio publishers. Every listener subscribes to every speaker. The
packet rate per speaker is stepped up; each step reports SFU CPU, forwarded packets/s, and loss.

aiortc never accepts transport-wide-cc as a receiver, so by default the listeners' answers leave it
out and the SFU's per-subscriber congestion controller (``media/congestion/``) is not engaged. With
``BENCH_SFU_TWCC=1`` the listeners play a browser: their answers are munged to accept transport-cc
(as ``services/sfu/tests/media/test_subscriber_congestion.py`` does), they parse the transport-wide
sequence numbers and send TWCC feedback every ``BENCH_SFU_TWCC_FEEDBACK_MS`` (default 100), so every
forwarded packet is stamped and goes through the send history, and the feedback through the
estimator. The SFU reports how many controllers and feedback packets it saw, so a run shows whether
the path was exercised.

``BENCH_SFU_MICRO=1`` measures instead the SFU CPU per ``DownTrack.forward`` call on one connected
peer connection (:func:`micro_main`); ``BENCH_SFU_PROFILE=<file>`` dumps the SFU process's cProfile
stats of a room run.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import re
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SPEAKERS = int(os.environ.get("BENCH_SFU_SPEAKERS", "4"))
LISTENERS = int(os.environ.get("BENCH_SFU_LISTENERS", "16"))
RATES = [int(x) for x in os.environ.get("BENCH_SFU_RATES", "50,250,500,1000").split(",")]
"""RTP packets per second per speaker for each step (50 = one 20 ms Opus stream)."""
WINDOW_S = float(os.environ.get("BENCH_SFU_WINDOW", "4"))
PAYLOAD = 80
"""Bytes of (synthetic) Opus payload per packet."""
TWCC = os.environ.get("BENCH_SFU_TWCC", "0") == "1"
"""Listeners accept transport-wide-cc and send TWCC feedback (see the module docstring)."""
FEEDBACK_S = float(os.environ.get("BENCH_SFU_TWCC_FEEDBACK_MS", "100")) / 1000
MICRO = os.environ.get("BENCH_SFU_MICRO", "0") == "1"
"""Instead of the room: SFU CPU per ``DownTrack.forward`` call on one real connected peer connection
(see :func:`micro_main`)."""
PROFILE = os.environ.get("BENCH_SFU_PROFILE", "")
SEND_CACHE = os.environ.get("BENCH_SFU_SEND_CACHE", "1") == "1"
"""Down tracks use the cached send path (``sfu.cached_send_path``; the bench's default, the SFU's is off)."""
"""A file for the SFU process's cProfile stats, from the first measurement window to the end (the
profiler's overhead inflates every number of such a run: use it to see where time goes, not how much)."""
URI_TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# ------------------------------------------------------------------------------------------ SFU side


def sfu_main(conn: Connection) -> None:
    import uvloop

    uvloop.run(_sfu(conn))


async def _sfu(conn: Connection) -> None:
    from aiortc import RTCSessionDescription

    from parley.config import RtcConfig
    from parley.sfu.media import DownTrack, UpTrack, configure, new_peer_connection, prepare_answer

    context = configure(RtcConfig(use_loopback=True, port_range_start=46000, port_range_end=46999))
    if hasattr(context, "cached_send_path"):  # absent in commits before it (before/after runs)
        context.cached_send_path = SEND_CACHE
    stats = context.stats
    loop = asyncio.get_running_loop()
    pcs: list[Any] = []
    ups: list[UpTrack] = []
    baseline_rss = _rss_mb()
    mark: tuple[float, float, int, int] = (0.0, 0.0, 0, 0)
    profile: Any = None
    while True:
        msg = await loop.run_in_executor(None, conn.recv)
        op = msg[0]
        if op == "publish":
            pc = new_peer_connection()
            pcs.append(pc)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=msg[1], type="offer"))
            for t in pc.getTransceivers():
                ups.append(
                    UpTrack(
                        t.receiver, kind=t.kind, mid=t.mid or "", track_sid=f"TR_{len(ups)}", context=context
                    )
                )
            await pc.setLocalDescription(await pc.createAnswer())
            conn.send(prepare_answer(msg[1], pc.localDescription.sdp))
        elif op == "subscribe":
            pc = new_peer_connection()
            pcs.append(pc)
            for i, up in enumerate(ups):
                DownTrack.attach(pc, up, stream_id=f"PA_{i}|TR_{i}", track_id=f"TR_{i}", context=context)
            await pc.setLocalDescription(await pc.createOffer())
            conn.send(pc.localDescription.sdp)
            answer = await loop.run_in_executor(None, conn.recv)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            conn.send("ok")
        elif op == "mark":
            if PROFILE and profile is None:
                import cProfile

                profile = cProfile.Profile()
                profile.enable()
            mark = (time.monotonic(), _cpu(), stats.packets_in, stats.packets_out)
            conn.send("ok")
        elif op == "describe":
            import parley.sfu

            conn.send({"sfu_path": str(Path(parley.sfu.__file__).parent), **_congestion_counters(context)})
        elif op == "measure":
            t0, c0, pin, pout = mark
            wall = time.monotonic() - t0
            conn.send(
                {
                    "wall": wall,
                    "cpu": (_cpu() - c0) / wall,
                    "in_pps": (stats.packets_in - pin) / wall,
                    "out_pps": (stats.packets_out - pout) / wall,
                    "rss_mb": _rss_mb(),
                    "baseline_rss_mb": baseline_rss,
                    "errors": stats.errors,
                    **_congestion_counters(context),
                }
            )
        elif op == "stop":
            if profile is not None:
                profile.disable()
                profile.dump_stats(PROFILE)
            for pc in pcs:
                await pc.close()
            conn.send("ok")
            return


def _congestion_counters(context: Any) -> dict[str, Any]:
    """Subscriber congestion controllers alive in the SFU's media context and the TWCC feedback they
    consumed."""
    controllers: list[Any] = list(context.transports.congestions())
    return {
        "cc_transports": len(controllers),
        "cc_feedback": sum(cc.feedback_received for cc in controllers),
        "cc_feedback_errors": sum(cc.feedback_errors for cc in controllers),
    }


# -------------------------------------------------------------------------------------- client side


def _accept_transport_cc(sdp: str, ext_id: int) -> str:
    """What a browser's answer has on every m-line: the extension and transport-cc feedback per codec."""
    sections = re.split(r"(?=^m=)", sdp, flags=re.M)
    out = [sections[0]]
    for section in sections[1:]:
        pts = section.split("\r\n", 1)[0].split()[3:]
        extra = f"a=extmap:{ext_id} {URI_TWCC}\r\n" + "".join(
            f"a=rtcp-fb:{pt} transport-cc\r\n" for pt in pts
        )
        out.append(section + extra)
    return "".join(out)


def _twcc_id(sdp: str) -> int | None:
    found = re.search(rf"a=extmap:(\d+) {re.escape(URI_TWCC)}", sdp)
    return int(found.group(1)) if found else None


class _FeedbackSender:
    """A listener's transport-wide-cc receiver side: arrival times by transport sequence number, sent
    back as one TWCC feedback packet per interval (what a browser does)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.arrivals: dict[int, float] = {}
        self.last: int | None = None
        """Unwrapped highest sequence number seen."""
        self.next_base: int | None = None
        self.count = 0
        self.sent = 0

    def on_rtp(self, packet: Any, arrival_ms: int) -> None:
        seq = packet.extensions.transport_sequence_number
        if seq is None:
            return
        if self.last is None:
            unwrapped = seq
        else:
            delta = (seq - self.last) & 0xFFFF
            unwrapped = self.last + (delta if delta < 0x8000 else delta - 0x10000)
        if self.last is None or unwrapped > self.last:
            self.last = unwrapped
        self.arrivals[unwrapped] = arrival_ms / 1000

    def flush(self) -> None:
        from parley.sfu.media import aiortc_internals as internals
        from parley.sfu.media.congestion import build_feedback

        if self.last is None or not self.arrivals:
            return
        base = min(self.arrivals) if self.next_base is None else max(self.next_base, min(self.arrivals))
        end = min(self.last, base + 2000)
        arrivals = [self.arrivals.pop(seq, None) for seq in range(base, end + 1)]
        self.arrivals = {k: v for k, v in self.arrivals.items() if k > end}
        self.next_base = end + 1
        if not any(a is not None for a in arrivals):
            return
        packet = build_feedback(base_seq=base & 0xFFFF, arrivals=arrivals, fb_count=self.count & 0xFF)
        self.count += 1
        if internals.send_rtp_sync(self.transport, packet):
            self.sent += 1


def clients_main(sfu: Connection, out: Connection) -> None:
    import uvloop

    try:
        out.send(uvloop.run(_clients(sfu)))
    except Exception as exc:  # reported by the orchestrator
        out.send({"error": f"{type(exc).__name__}: {exc}"})


class _Publisher:
    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        from parley.sfu.media import aiortc_internals as internals

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.transceiver = self.pc.addTransceiver("audio", direction="sendonly")
        self.params: Any = None
        internals.hook_sender(self.transceiver.sender, on_rtcp=lambda p: None, on_parameters=self._on_params)
        self.ssrc = internals.sender_ssrc(self.transceiver.sender)
        self.seq = random.randrange(0, 0x8000)
        self.ts = random.randrange(0, 1 << 31)
        self.sent = 0
        self.payload = os.urandom(PAYLOAD)

    def _on_params(self, params: Any) -> None:
        from parley.sfu.media import aiortc_internals as internals
        from parley.sfu.media.rtp_writer import RtpWriter

        self.params = params
        self.writer = RtpWriter(internals.header_extension_ids(params), params.muxId)
        self.pt = params.codecs[0].payloadType

    def send(self, count: int) -> None:
        from aiortc.rtp import RtpPacket

        from parley.sfu.media import aiortc_internals as internals

        if self.params is None:
            return
        for _ in range(count):
            packet = RtpPacket(
                payload_type=self.pt, sequence_number=self.seq, timestamp=self.ts, payload=self.payload
            )
            packet.extensions.audio_level = (True, 30)
            data = self.writer.write(packet, payload_type=self.pt, seq=self.seq, ts=self.ts, ssrc=self.ssrc)
            if internals.send_rtp_sync(self.transceiver.sender.transport, data):
                self.sent += 1
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + 960) & 0xFFFFFFFF


async def _clients(sfu: Connection) -> dict[str, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    from parley.config import RtcConfig
    from parley.sfu.media import aiortc_internals as internals
    from parley.sfu.media import configure
    from parley.testing import poll_until

    configure(RtcConfig(use_loopback=True, port_range_start=47000, port_range_end=47999))
    loop = asyncio.get_running_loop()

    async def rpc(*msg: Any) -> Any:
        sfu.send(msg)
        return await loop.run_in_executor(None, sfu.recv)

    t_setup = time.monotonic()
    pubs = [_Publisher() for _ in range(SPEAKERS)]
    for pub in pubs:
        await pub.pc.setLocalDescription(await pub.pc.createOffer())
        answer = await rpc("publish", pub.pc.localDescription.sdp)
        await pub.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    received = [0]
    subs = []
    feedback: list[_FeedbackSender] = []
    for _ in range(LISTENERS):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        subs.append(pc)
        offer = await rpc("subscribe")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        twcc_id = _twcc_id(offer) if TWCC else None
        if TWCC and twcc_id is None:
            raise RuntimeError("BENCH_SFU_TWCC=1 but the SFU's offer has no transport-wide-cc (older tree?)")
        fb = _FeedbackSender(pc.getTransceivers()[0].receiver.transport) if twcc_id is not None else None
        if fb is not None:
            feedback.append(fb)
        for t in pc.getTransceivers():

            def on_rtp(packet: Any, arrival: int, fb: _FeedbackSender | None = fb) -> None:
                received[0] += 1
                if fb is not None:
                    fb.on_rtp(packet, arrival)

            internals.hook_receiver(
                t.receiver, on_rtp=on_rtp, on_rtcp=lambda p: None, on_parameters=lambda p: None
            )
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp
        if fb is not None and twcc_id is not None:
            answer = _accept_transport_cc(answer, twcc_id)
            # the "browser" parses what it accepted (aiortc's answer left the extension out)
            fb.transport._rtp_header_extensions_map.configure(
                RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=twcc_id, uri=URI_TWCC)])
            )
        sfu.send(answer)
        await loop.run_in_executor(None, sfu.recv)
    await poll_until(
        lambda: (
            all(p.params is not None for p in pubs)
            and all(pc.connectionState == "connected" for pc in subs + [p.pc for p in pubs])
        ),
        timeout=60,
        message="all peer connections connected",
    )
    setup_s = time.monotonic() - t_setup

    # warm-up: until every listener gets every speaker
    sending = {"rate": 50}
    stop = asyncio.Event()

    async def pump() -> None:
        carry = 0.0
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            carry += sending["rate"] * (now - last)  # by elapsed time: late ticks send more
            last = now
            n = int(carry)
            carry -= n
            for pub in pubs:
                pub.send(n)

    async def feedback_pump() -> None:
        while not stop.is_set():
            await asyncio.sleep(FEEDBACK_S)
            for fb in feedback:
                fb.flush()

    pump_task = asyncio.create_task(pump())
    feedback_task = asyncio.create_task(feedback_pump())
    await poll_until(lambda: received[0] > SPEAKERS * LISTENERS * 5, timeout=30, message="media flows")
    steps = []
    try:
        for rate in RATES:
            sending["rate"] = rate
            await asyncio.sleep(0.5)  # settle at the new rate (pacing, not waiting for a condition)
            sent0 = sum(p.sent for p in pubs)
            recv0 = received[0]
            cpu0 = _cpu()
            t0 = time.monotonic()
            await rpc("mark")
            await asyncio.sleep(WINDOW_S)  # the measurement window
            sfu_stats = await rpc("measure")
            sent = sum(p.sent for p in pubs) - sent0
            wall = time.monotonic() - t0
            client_cpu = (_cpu() - cpu0) / wall
            # packets in flight at the window's end still count: compare with sends up to 100 ms earlier
            await asyncio.sleep(0.1)
            got = received[0] - recv0
            expected = sent * LISTENERS
            loss = max(0.0, 1 - got / expected) if expected else 1.0
            steps.append(
                {"rate": rate, "loss": loss, "client_cpu": client_cpu, "sent_pps": sent / wall, **sfu_stats}
            )
            if loss >= 0.05:
                break
    finally:
        stop.set()
        await pump_task
        await feedback_task
    described = await rpc("describe")
    await rpc("stop")
    for pc in subs + [p.pc for p in pubs]:
        await pc.close()
    return {
        "steps": steps,
        "setup_s": setup_s,
        "loadavg": _loadavg(),
        "feedback_sent": sum(fb.sent for fb in feedback),
        **described,
    }


# ----------------------------------------------------------------------------------- micro (issue 15)

MICRO_DOWNS = 4
MICRO_BATCHES = int(os.environ.get("BENCH_SFU_MICRO_BATCHES", "100"))


def micro_main(out: Connection) -> None:
    import uvloop

    try:
        out.send(uvloop.run(_micro()))
    except Exception as exc:  # reported by the orchestrator
        out.send({"error": f"{type(exc).__name__}: {exc}"})


async def _micro() -> dict[str, Any]:
    """One SFU peer connection with ``MICRO_DOWNS`` audio down tracks, connected to an aiortc
    listener in the same process (which unprotects and parses between batches); 100 packets per
    batch go through every down track's ``forward`` (munging, writing, SRTP, sendto). Reported: the
    process CPU time per forwarded packet over each batch (the listener's work falls between
    batches), whose median and minimum are steadier on a shared machine than the room's rates."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcrtpparameters import (
        RTCRtpCodecParameters,
        RTCRtpHeaderExtensionParameters,
        RTCRtpParameters,
    )
    from aiortc.rtp import RtpPacket

    import parley.sfu
    from parley.config import RtcConfig
    from parley.sfu.media import DownTrack, configure, new_peer_connection
    from parley.sfu.media import aiortc_internals as internals
    from parley.sfu.media.fakes import FakePublishedMedia
    from parley.sfu.media.layers import Layer
    from parley.testing import poll_until

    context = configure(RtcConfig(use_loopback=True, port_range_start=48000, port_range_end=48999))
    up = FakePublishedMedia("audio")
    up.codecs = {
        111: RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    }
    sfu = new_peer_connection(context)
    downs = [
        DownTrack.attach(sfu, up, stream_id="PA|TR", track_id="TR", context=context)
        for _ in range(MICRO_DOWNS)
    ]
    sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received = [0]

    def on_rtp(packet: Any, arrival: int) -> None:
        received[0] += 1

    await sfu.setLocalDescription(await sfu.createOffer())
    await sub.setRemoteDescription(sfu.localDescription)
    for t in sub.getTransceivers():
        internals.hook_receiver(
            t.receiver, on_rtp=on_rtp, on_rtcp=lambda p: None, on_parameters=lambda p: None
        )
    await sub.setLocalDescription(await sub.createAnswer())
    answer = sub.localDescription.sdp
    twcc_id = _twcc_id(sfu.localDescription.sdp) if TWCC else None
    if twcc_id is not None:
        answer = _accept_transport_cc(answer, twcc_id)
        transport: Any = sub.getTransceivers()[0].receiver.transport
        transport._rtp_header_extensions_map.configure(
            RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=twcc_id, uri=URI_TWCC)])
        )
    await sfu.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await poll_until(lambda: sfu.connectionState == "connected", timeout=30, message="micro: connected")
    layer = Layer("", 1234, 64)
    payload = os.urandom(PAYLOAD)
    seq = [1000]

    def batch(n: int) -> None:
        for _ in range(n):
            packet = RtpPacket(
                payload_type=111,
                sequence_number=seq[0] & 0xFFFF,
                timestamp=(seq[0] * 960) & 0xFFFFFFFF,
                ssrc=1234,
                payload=payload,
            )
            packet.extensions.audio_level = (True, 30)
            seq[0] += 1
            now = time.monotonic()
            for down in downs:
                down.forward(layer, packet, False, now)

    for _ in range(500):  # warm-up: every down track sends (negotiated, send path resolved)
        batch(50)
        await asyncio.sleep(0.01)
        if all(d.packets_sent > 500 for d in downs):
            break
    else:
        raise RuntimeError("micro: the down tracks do not send")
    sent0, received0 = context.stats.packets_out, received[0]
    per_packet: list[float] = []
    for _ in range(MICRO_BATCHES):
        t0 = time.process_time()
        batch(100)
        per_packet.append((time.process_time() - t0) / (100 * len(downs)) * 1e6)
        await asyncio.sleep(0.03)  # the listener catches up outside the measurement
    sent = context.stats.packets_out - sent0
    await poll_until(lambda: received[0] - received0 >= sent * 0.9, timeout=10, message="micro: delivered")
    congestion = len(list(context.transports.congestions()))
    await sub.close()
    await sfu.close()
    per_packet.sort()
    return {
        "median": per_packet[len(per_packet) // 2],
        "p10": per_packet[len(per_packet) // 10],
        "min": per_packet[0],
        "sent": sent,
        "received": received[0] - received0,
        "congestion": congestion,
        "sfu_path": str(Path(parley.sfu.__file__).parent),
        "loadavg": _loadavg(),
    }


async def _run_micro() -> str:
    ctx = mp.get_context("spawn")
    result_recv, result_send = ctx.Pipe(duplex=False)
    proc = _spawn(micro_main, result_send)
    loop = asyncio.get_running_loop()
    try:
        if not await loop.run_in_executor(None, result_recv.poll, 300):
            raise TimeoutError("micro benchmark did not finish in 300 s")
        r = result_recv.recv()
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
    if "error" in r:
        raise RuntimeError(r["error"])
    return (
        f"## SFU forwarding micro ({MICRO_DOWNS} audio down tracks on one peer connection"
        f"{', TWCC' if TWCC else ''})\n\n"
        f"CPU per forwarded packet over {MICRO_BATCHES} batches of 100 x {MICRO_DOWNS}: "
        f"**median {r['median']:.2f} µs**, p10 {r['p10']:.2f} µs, min {r['min']:.2f} µs; "
        f"{r['sent']:,} sent, {r['received']:,} received; congestion controllers: {r['congestion']}. "
        f"Load average at the end: {r['loadavg']}. SFU code imported from {r['sfu_path']}.\n"
    )


# ------------------------------------------------------------------------------------- orchestration


def _spawn(target: Callable[..., None], *args: Any) -> mp.process.BaseProcess:
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


async def run() -> str:
    if MICRO:
        return await _run_micro()
    ctx = mp.get_context("spawn")
    sfu_conn, client_conn = ctx.Pipe()
    result_recv, result_send = ctx.Pipe(duplex=False)
    sfu = _spawn(sfu_main, sfu_conn)
    clients = _spawn(clients_main, client_conn, result_send)
    loop = asyncio.get_running_loop()
    try:
        ready = await loop.run_in_executor(None, result_recv.poll, 600)
        if not ready:
            raise TimeoutError("benchmark did not finish in 600 s")
        result = result_recv.recv()
    finally:
        for proc in (clients, sfu):
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    if "error" in result:
        raise RuntimeError(result["error"])
    return _report(result)


def _report(result: dict[str, Any]) -> str:
    participants = SPEAKERS + LISTENERS
    twcc = (
        f"Listeners accept transport-wide-cc and send TWCC feedback every {FEEDBACK_S * 1000:.0f} ms "
        f"(BENCH_SFU_TWCC=1): the SFU had {result['cc_transports']} subscriber congestion controllers and "
        f"consumed {result['cc_feedback']:,} of the {result['feedback_sent']:,} feedback packets sent "
        f"({result['cc_feedback_errors']} unparsable)."
        if TWCC
        else "Listeners are plain aiortc (no transport-wide-cc): subscriber congestion controllers on the SFU: "
        f"{'none in this tree' if result['cc_transports'] is None else result['cc_transports']}."
    )
    lines = [
        f"## SFU forwarding (audio room, {SPEAKERS} speakers x {LISTENERS} listeners"
        f"{', TWCC' if TWCC else ''})",
        "",
        f"SFU (parley.sfu.media on aiortc 1.16.0 + uvloop) in its own process; clients (aiortc, uvloop) in "
        f"another; {PAYLOAD} B synthetic Opus payloads; every listener subscribes to every speaker "
        f"({SPEAKERS * LISTENERS} down tracks). Setup of {participants} peer connections: "
        f"{result['setup_s']:.1f} s. Window {WINDOW_S:.0f} s per step. Machine load average at the end: "
        f"{result['loadavg']} (2 cores shared with other jobs: a process gets only part of a core). "
        f"SFU code imported from {result['sfu_path']}.",
        "",
        twcc,
        "",
        "| pkt/s per speaker | clients sent pkt/s | SFU in pkt/s | SFU out pkt/s | loss | SFU CPU (cores) | out pkt/s per SFU core "
        "| SFU µs per out pkt | SFU CPU per participant | clients CPU | SFU RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    best = 0.0
    for s in result["steps"]:
        per_core = s["out_pps"] / s["cpu"] if s["cpu"] > 0 else 0.0
        if s["loss"] < 0.01:
            best = max(best, per_core)
        lines.append(
            f"| {s['rate']} | {s['sent_pps']:,.0f} | {s['in_pps']:,.0f} | {s['out_pps']:,.0f} | {s['loss'] * 100:.2f} % | "
            f"{s['cpu']:.2f} | {per_core:,.0f} | {1e6 / per_core if per_core else 0:.1f} | "
            f"{s['cpu'] / participants * 100:.2f} % | "
            f"{s['client_cpu']:.2f} | {s['rss_mb']:.0f} |"
        )
    last = result["steps"][-1] if result["steps"] else None
    if last is not None:
        per_participant_mb = (last["rss_mb"] - last["baseline_rss_mb"]) / participants
        lines += [
            "",
            f"SFU memory: {last['baseline_rss_mb']:.0f} MB before any peer connection, "
            f"{last['rss_mb']:.0f} MB with {participants} participants "
            f"(about {per_participant_mb:.2f} MB per participant).",
        ]
    lines += [
        "",
        f"**Forwarding capacity at < 1 % loss: {best:,.0f} forwarded packets/s per SFU core** (out pkt/s divided "
        "by the SFU process's CPU use). LiveKit (Go): about 56-75 k packets/s per busy core "
        "(../shared/performance-anchors.md §1.1). On this 2-core machine the clients process shares the cores, so the "
        "highest steps are limited by the clients as much as by the SFU.",
        "",
    ]
    return "\n".join(lines)
