"""Data packets (livekit-protocol §3): synchronous, no awaits.

The kind comes from the channel label; the sender's identity and sid are stamped; reliable
sequence numbers and user nonces are de-duplicated; packets go to everyone else or to the
destinations named, over the receiver's primary-PC channel of the same kind.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import DecodeError
from livekit.protocol import models

from parley.observability import get_logger
from parley.sfu import rpc
from parley.sfu.participant import Participant

log = get_logger("parley.sfu.data")

RELIABLE = "_reliable"
LOSSY = "_lossy"
DATA_TRACK = "_data_track"
_KIND = {RELIABLE: models.DataPacket.Kind.RELIABLE, LOSSY: models.DataPacket.Kind.LOSSY}
REFUSAL_LOG_EVERY = 100
"""Refused packets are logged once per this many (the first one always)."""
LABEL_OF_KIND = {models.DataPacket.Kind.RELIABLE: RELIABLE, models.DataPacket.Kind.LOSSY: LOSSY}


def _keeps_identity(sender: Participant, packet: models.DataPacket, value: str | None) -> bool:
    """Agents may speak for a user in chat messages and text streams (transcriptions)."""
    if not sender.is_agent:
        return False
    if value == "chat_message":
        return True
    return value == "stream_header" and packet.stream_header.HasField("text_header")


def prepare(sender: Participant, label: str, data: bytes) -> models.DataPacket | None:
    """The packet to forward, or None when it must be dropped."""
    kind = _KIND.get(label)
    if kind is None:
        return None
    if not sender.permission.can_publish_data:
        sender.refused_data += 1
        if sender.refused_data % REFUSAL_LOG_EVERY == 1:
            log.info(
                "data packet refused",
                participant=sender.sid,
                why="can_publish_data",
                count=sender.refused_data,
            )
        return None
    packet = models.DataPacket()
    try:
        packet.ParseFromString(data)
    except DecodeError:
        log.info("undecodable data packet dropped", participant=sender.sid)
        return None
    value = packet.WhichOneof("value")
    if value == "metrics" or (value == "transcription" and not sender.is_agent):
        return None
    if kind == models.DataPacket.Kind.RELIABLE and packet.sequence > 0:
        if packet.sequence <= sender.last_reliable_seq:
            return None
        sender.last_reliable_seq = packet.sequence
    packet.kind = kind
    if not (_keeps_identity(sender, packet, value) and packet.participant_identity):
        packet.participant_identity = "" if sender.hidden else sender.identity
    packet.participant_sid = sender.sid
    if value == "user":
        user = packet.user
        if user.nonce and sender.seen_nonce(bytes(user.nonce)):
            return None
        user.participant_sid = packet.participant_sid
        user.participant_identity = packet.participant_identity
        if user.destination_identities and not packet.destination_identities:
            packet.destination_identities.extend(user.destination_identities)
        elif packet.destination_identities and not user.destination_identities:
            user.destination_identities.extend(packet.destination_identities)
    return packet


def deliver(
    packet: models.DataPacket,
    receivers: Iterable[Participant],
    *,
    sender: Participant | None,
    destination_sids: Iterable[str] = (),
) -> int:
    identities = set(packet.destination_identities)
    sids = set(destination_sids)
    if packet.WhichOneof("value") == "user":
        sids.update(packet.user.destination_sids)
    label = LABEL_OF_KIND.get(packet.kind, RELIABLE)
    payload = packet.SerializeToString()
    sent = 0
    for receiver in receivers:
        if receiver is sender or receiver.closed:
            continue
        if (identities or sids) and receiver.identity not in identities and receiver.sid not in sids:
            continue
        if receiver.send_data(label, payload):
            sent += 1
    return sent


def route(sender: Participant, receivers: Iterable[Participant], label: str, data: bytes | str) -> None:
    """A message arrived on one of the sender's data channels."""
    if label == DATA_TRACK or isinstance(data, str):
        return
    try:
        packet = prepare(sender, label, data)
        if packet is not None and not rpc.claim(sender, packet):
            deliver(packet, receivers, sender=sender)
    except Exception:
        log.exception("data packet routing failed", participant=sender.sid)
