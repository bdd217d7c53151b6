"""publisher (aiortc) -> SFU media engine -> subscriber (aiortc), all real peers on loopback."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, sdp
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, AnyRtcpPacket, RtcpPsfbPacket, RtpPacket, unpack_remb_fci

from parley.sfu.media import DownTrack, new_peer_connection
from parley.sfu.media import aiortc_internals as internals
from parley.testing import poll_until

SAMPLE_RATE, WIDTH, HEIGHT = 48000, 320, 240
Room = Any

pytestmark = pytest.mark.integration


async def _collect_audio(track: object, seconds: float) -> np.ndarray:
    chunks: list[np.ndarray] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        frame = await asyncio.wait_for(track.recv(), 10)  # type: ignore[attr-defined]
        pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0].astype(np.float64)
        chunks.append(pcm)
        total += pcm.size
    return np.concatenate(chunks)


async def test_audio_and_video_reach_the_subscriber_decoded(room: Room) -> None:
    sub = await room.subscribe()
    await poll_until(lambda: len(sub.tracks) == 2, timeout=20, message="subscriber tracks")

    audio = await _collect_audio(sub.tracks["audio"], 1.5)
    audio = audio[SAMPLE_RATE // 2 :]  # skip the start (codec warm-up)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    dominant = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)[int(np.argmax(spectrum))]
    assert abs(dominant - 440) < 5, dominant

    sizes = set()
    for _ in range(10):
        frame = await asyncio.wait_for(sub.tracks["video"].recv(), 10)  # type: ignore[attr-defined]
        sizes.add((frame.width, frame.height))
    assert sizes == {(WIDTH, HEIGHT)}

    up_audio, up_video = room.ups["audio"], room.ups["video"]
    assert up_audio.mime_type.lower() == "audio/opus"
    assert up_video.mime_type.lower() == "video/vp8"
    assert (up_video.width, up_video.height) == (WIDTH, HEIGHT)
    assert up_video.layers == [""]
    await poll_until(lambda: up_audio.audio_level > 0.1, message="audio level from RFC 6464")
    assert up_video.audio_level == 0
    assert all(d.packets_sent > 0 for d in sub.downs)
    stats = room.context.stats
    assert stats.packets_in > 0 and stats.packets_out > 0
    # the SFU-side receivers run no decoder threads: only the subscriber's two decoders exist
    decoders = [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]
    assert sorted(decoders) == ["audio-decoder", "video-decoder"]


async def test_ssrc_seq_and_timestamps_rewritten_continuously_across_pause(room: Room) -> None:
    sub = await room.subscribe(kinds=("audio",))
    seen: list[RtpPacket] = []
    receiver = next(t.receiver for t in sub.pc.getTransceivers() if t.kind == "audio")
    internals.tap_receiver_rtp(receiver, lambda p, _t: seen.append(p))
    await poll_until(lambda: len(seen) >= 30, timeout=20, message="first audio packets")
    down = sub.downs[0]
    pub_ssrc = room.ups["audio"].layer_for_ssrc(seen[0].ssrc)
    assert pub_ssrc is None  # the subscriber sees our SSRC, not the publisher's
    assert {p.ssrc for p in seen} == {down.ssrc}

    down.paused = True
    paused_at = len(seen)
    sent_when_paused = down.packets_sent
    await poll_until(
        lambda: room.ups["audio"].packets_received > 80 + sent_when_paused, message="time passes"
    )
    assert down.packets_sent == sent_when_paused
    down.paused = False
    await poll_until(lambda: len(seen) >= paused_at + 30, message="audio after resume")

    seqs = [p.sequence_number for p in seen]
    for a, b in itertools.pairwise(seqs):
        assert (b - a) & 0xFFFF == 1, (a, b)
    # time never goes backwards, and moves on by the pause: the publisher sent 80+ packets of 20 ms
    # (960 at 48 kHz) meanwhile. Found by the gap, not by ``paused_at``: a packet in flight when
    # the pause began may arrive after it.
    gaps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(seen)]
    assert all(0 < gap < 0x80000000 for gap in gaps), gaps
    assert max(gaps) >= 40 * 960, "the pause did not move the timestamps on"


def _rtx_of(sdp_text: str, kind: str) -> tuple[int, int, int]:
    """(media SSRC, RTX SSRC, RTX PT for VP8) the SFU signalled on its ``kind`` m-line."""
    section = next(m for m in sdp.SessionDescription.parse(sdp_text).media if m.kind == kind)
    [fid] = [g for g in section.ssrc_group if g.semantic == "FID"]
    vp8 = next(c.payloadType for c in section.rtp.codecs if c.mimeType.lower() == "video/vp8")
    rtx = next(c.payloadType for c in section.rtp.codecs if c.parameters.get("apt") == vp8)
    assert rtx is not None
    return int(fid.items[0]), int(fid.items[1]), rtx


async def test_lost_packet_is_recovered_via_rtx(room: Room) -> None:
    """The subscriber (aiortc) negotiated RTX for VP8: the answer to its NACK comes on the RTX SSRC
    with the RTX payload type, the original sequence number first in the payload (RFC 4588)."""
    sub = await room.subscribe(kinds=("video",))
    down = sub.downs[0]
    media_ssrc, rtx_ssrc, rtx_pt = _rtx_of(sub.pc.remoteDescription.sdp, "video")
    assert media_ssrc == down.ssrc and rtx_ssrc != media_ssrc
    media: list[int] = []
    rtx: list[RtpPacket] = []
    receiver = next(t.receiver for t in sub.pc.getTransceivers() if t.kind == "video")

    def observe(p: RtpPacket, _t: int) -> None:
        if p.ssrc == rtx_ssrc:
            rtx.append(p)
        else:
            media.append(p.sequence_number)

    internals.tap_receiver_rtp(receiver, observe)
    await poll_until(lambda: len(media) >= 20, timeout=20, message="video flows")

    dropped: list[bytes] = []
    transmit: Callable[[bytes], bool] = down._transmit

    def lossy(data: bytes) -> bool:
        if not dropped and not 200 <= data[1] <= 206:  # RTP, not RTCP
            dropped.append(data)
            down._transmit = transmit  # type: ignore[method-assign]
            return True  # pretend sent; the subscriber never gets it
        return transmit(data)

    down._transmit = lossy  # type: ignore[method-assign]
    await poll_until(lambda: dropped, message="a packet dropped")
    lost = RtpPacket.parse(dropped[0])
    # lossy() never sent it, so only a NACK answered from the cache can deliver it
    await poll_until(
        lambda: any(int.from_bytes(p.payload[:2], "big") == lost.sequence_number for p in rtx),
        timeout=10,
        message="RTX retransmission after NACK",
    )
    answer = next(p for p in rtx if int.from_bytes(p.payload[:2], "big") == lost.sequence_number)
    assert answer.payload_type == rtx_pt
    assert answer.payload[2:] == lost.payload and answer.timestamp == lost.timestamp
    assert lost.sequence_number not in media  # never resent on the media SSRC
    seqs = [p.sequence_number for p in rtx]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # the RTX stream's own numbers
    assert down.rtx_sent >= 1 and down.nacks_answered >= 1
    # the subscriber unwrapped it: its NACK generator no longer misses the packet
    generator: Any = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
    await poll_until(lambda: lost.sequence_number not in generator.missing, message="recovered")


async def test_pli_from_subscribers_reaches_publisher_throttled(room: Room) -> None:
    sub = await room.subscribe(kinds=("video",))
    down = sub.downs[0]
    await poll_until(lambda: down.packets_sent > 10, timeout=20, message="video flows")
    plis: list[float] = []
    loop = asyncio.get_running_loop()
    pub_sender = next(t.sender for t in room.pub.getTransceivers() if t.kind == "video")

    def on_rtcp(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            plis.append(loop.time())

    internals.tap_sender_rtcp(pub_sender, on_rtcp)
    sub_transport = next(t.receiver for t in sub.pc.getTransceivers()).transport
    received_before = down.keyframe_requests_received
    for _ in range(30):  # a burst from the subscriber over ~1.5 s
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1234, media_ssrc=down.ssrc)
        assert internals.send_rtp_sync(sub_transport, bytes(pli))
        await asyncio.sleep(0.05)
    await poll_until(lambda: down.keyframe_requests_received - received_before >= 25, message="PLIs at SFU")
    assert 1 <= len(plis) <= 5, plis
    gaps = [b - a for a, b in itertools.pairwise(plis)]
    assert all(g >= 0.45 for g in gaps), gaps


async def test_publisher_gets_one_remb_for_its_connection_covering_every_track(room: Room) -> None:
    up_audio, up_video = room.ups["audio"], room.ups["video"]
    assert up_audio.feedback is up_video.feedback  # bundled: one estimate for the peer connection
    rembs: list[tuple[int, list[int]]] = []

    def on_rtcp(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            rembs.append(unpack_remb_fci(packet.fci))

    senders = {t.kind: t.sender for t in room.pub.getTransceivers()}
    for sender in senders.values():
        internals.tap_sender_rtcp(sender, on_rtcp)
    ssrcs = {kind: internals.sender_ssrc(sender) for kind, sender in senders.items()}

    def covered() -> bool:
        return any(set(ssrcs.values()) <= set(listed) for _, listed in rembs)

    await poll_until(covered, timeout=15, message="a REMB listing the audio and video SSRCs")
    settings = room.context.bwe
    assert all(settings.min_bps * 0.99 <= bitrate <= settings.max_bps for bitrate, _ in rembs), rembs
    assert up_video.feedback.rembs_sent >= 1
    up_audio.close()
    assert not up_video.feedback.closed  # the video track still holds it
    up_video.close()
    assert up_video.feedback.closed


async def test_exceptions_on_the_media_path_do_not_stop_receiving(room: Room) -> None:
    sub1 = await room.subscribe(kinds=("audio",))
    sub2 = await room.subscribe(kinds=("audio",))
    bad, good = sub1.downs[0], sub2.downs[0]
    await poll_until(lambda: bad.packets_sent > 5 and good.packets_sent > 5, timeout=20, message="flows")

    def boom(*args: object) -> None:
        raise RuntimeError("broken down track")

    errors = room.context.stats.errors
    bad.forward = boom  # type: ignore[method-assign]
    mark = good.packets_sent
    await poll_until(lambda: good.packets_sent > mark + 25, message="the other subscriber still gets audio")
    assert room.context.stats.errors > errors

    up = room.ups["audio"]
    handle = up._handle_rtp

    def up_boom(*args: object) -> None:
        raise ValueError("broken up track")

    up._handle_rtp = up_boom  # type: ignore[method-assign]
    errors = room.context.stats.errors
    await poll_until(lambda: room.context.stats.errors > errors + 10, message="errors counted")
    up._handle_rtp = handle  # type: ignore[method-assign]
    mark = good.packets_sent
    await poll_until(lambda: good.packets_sent > mark + 10, message="receive loop survived")
    assert room.sfu_in.connectionState == "connected"


async def test_every_ice_socket_binds_inside_the_port_range(
    room: Room, publisher: Callable[..., Awaitable[Room]]
) -> None:
    sub = await room.subscribe()
    await poll_until(lambda: len(sub.tracks) == 2, timeout=20, message="connected")
    extra = await publisher(kinds=("audio",))
    try:
        rtc = internals._ports
        assert rtc is not None
        pcs = [room.sfu_in, room.pub, *room.pcs, extra.pub, extra.sfu_in]
        ports = []
        for pc in pcs:
            for line in pc.localDescription.sdp.splitlines():
                if line.startswith("a=candidate:") and " udp " in line.lower():
                    ports.append(int(line.split()[5]))
        assert len(ports) >= len(pcs)
        assert all(rtc.start <= p <= rtc.end for p in ports), ports
        # and every UDP socket this process holds (ICE gathers nowhere else) is inside the range
        bound = _own_udp_ports()
        assert bound <= set(ports)  # (the offerer closed its unbundled sockets)
        assert bound and all(rtc.start <= p <= rtc.end for p in bound), bound
    finally:
        await extra.close()


def _own_udp_ports() -> set[int]:
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].split(":")[1], 16))
    return ports


async def test_down_track_on_a_transceiver_offered_by_the_client(room: Room) -> None:
    """v1: the client offers a recvonly m-line; the SFU answers sendonly on it with our msid."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sfu = new_peer_connection()
    room.pcs += [client, sfu]
    client.addTransceiver("audio", direction="recvonly")
    got: list[object] = []
    client.on("track", lambda t: got.append(t))
    await client.setLocalDescription(await client.createOffer())
    await sfu.setRemoteDescription(RTCSessionDescription(sdp=client.localDescription.sdp, type="offer"))
    transceiver = sfu.getTransceivers()[0]
    down = DownTrack.attach(
        sfu,
        room.ups["audio"],
        stream_id="PA_pub|TR_a",
        track_id="TR_a",
        transceiver=transceiver,
        context=room.context,
    )
    await sfu.setLocalDescription(await sfu.createAnswer())
    answer = sfu.localDescription.sdp
    assert "a=sendonly" in answer
    assert "a=msid:PA_pub|TR_a TR_a" in answer
    await client.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await poll_until(lambda: down.packets_sent > 10, timeout=20, message="audio on the client's m-line")
    assert got
