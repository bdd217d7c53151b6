"""Subscription permissions: a publisher decides who may subscribe to its tracks (LiveKit
pkg/rtc/uptrackmanager.go, subscriptionmanager.go).

The publisher sends ``subscription_permission``; it replaces the previous one as a whole. Before any
(``Participant.subscription_permission is None``) or with ``all_participants`` everyone is allowed;
otherwise only the listed subscribers, for all their tracks or the listed track sids. Entries name
the subscriber by identity, or by sid, resolved to its identity when the update arrives (an unknown
sid is skipped; an entry with neither is an error and the previous permission stays). Recorders
(kind EGRESS or the ``recorder`` grant) are exempt; hidden participants and agents are not.

A subscriber that wants a track learns whether it may have it through
``subscription_permission_update{participant_sid (publisher), track_sid, allowed}``: the first time
the subscription is evaluated (``allowed`` true or false) and on every change after that, as Go's
``trackSubscription.setHasPermission``. A denial is not a subscription error (no
``subscription_response``): the subscription stays wanted and is made once allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from livekit.protocol import models, rtc

from parley.observability import get_logger
from parley.sfu import subscriptions

if TYPE_CHECKING:
    from parley.sfu.participant import Participant
    from parley.sfu.room import Room

log = get_logger("parley.sfu.permissions")

# subscriber -> track sid -> the ``allowed`` it was last told
_told: WeakKeyDictionary[Participant, dict[str, bool]] = WeakKeyDictionary()


def exempt(sub: Participant) -> bool:
    """Egress and recorders bypass track permissions (Go IsParticipantExemptFromTrackPermissionsRestrictions)."""
    return sub.info.kind == models.ParticipantInfo.Kind.EGRESS or sub.permission.recorder


def allowed(pub: Participant, sub: Participant, track_sid: str) -> bool:
    """Whether ``pub`` lets ``sub`` subscribe to ``track_sid``."""
    permission = pub.subscription_permission
    if permission is None or permission.all_participants or exempt(sub):
        return True
    for entry in permission.track_permissions:
        if entry.participant_identity == sub.identity:
            return entry.all_tracks or track_sid in entry.track_sids
    return False


def check(sub: Participant, pub: Participant, track_sid: str) -> bool:
    """``allowed`` for a subscription ``sub`` wants, telling ``sub`` when the answer is new."""
    ok = allowed(pub, sub, track_sid)
    told = _told.setdefault(sub, {})
    if told.get(track_sid) != ok:
        told[track_sid] = ok
        update = rtc.SubscriptionPermissionUpdate(participant_sid=pub.sid, track_sid=track_sid, allowed=ok)
        sub.send(rtc.SignalResponse(subscription_permission_update=update))
        if not ok:
            log.info("subscription not permitted", participant=sub.sid, publisher=pub.sid, track=track_sid)
    return ok


def resolve(room: Room, permission: rtc.SubscriptionPermission) -> rtc.SubscriptionPermission:
    """A copy whose entries all name their subscriber by identity.

    Raises:
        ValueError: an entry names no subscriber.
    """
    resolved = rtc.SubscriptionPermission(all_participants=permission.all_participants)
    for entry in permission.track_permissions:
        identity = entry.participant_identity
        if not identity:
            if not entry.participant_sid:
                raise ValueError("either participant identity or sid needed")
            sub = room.participants.get(entry.participant_sid)
            if sub is None:
                log.warning(
                    "subscription permission for an unknown participant",
                    room=room.name,
                    subscriber=entry.participant_sid,
                )
                continue
            identity = sub.identity
        copy = resolved.track_permissions.add()
        copy.CopyFrom(entry)
        copy.participant_identity = identity
    return resolved


def update(room: Room, pub: Participant, permission: rtc.SubscriptionPermission) -> None:
    """The publisher's ``subscription_permission`` request: store it and re-evaluate every subscriber
    (a revoked one loses the track, an allowed one gains it)."""
    try:
        resolved = resolve(room, permission)
    except ValueError as exc:
        log.warning("subscription permission rejected", room=room.name, participant=pub.sid, error=str(exc))
        return
    pub.subscription_permission = resolved
    log.info(
        "subscription permission updated",
        room=room.name,
        participant=pub.sid,
        all_participants=resolved.all_participants,
        entries=len(resolved.track_permissions),
    )
    subscriptions.reconcile_all(room)
