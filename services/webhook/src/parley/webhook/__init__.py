"""Signed, ordered, at-least-once webhook delivery from JetStream.

Wire (``wire``): exactly LiveKit's. POST body = protobuf-JSON of ``livekit.WebhookEvent``
(camelCase, defaults omitted), ``Content-Type: application/webhook+json``, ``User-Agent:
LiveKit``, ``Authorization`` = raw HS256 JWT (iss = ``webhook.api_key``, 5 min, ``sha256`` =
base64 SHA-256 of the exact body). The webhook ``id`` is the RoomEvent id (``EV_…``), so
every retry and every post-crash duplicate carries the same id and the same body.

Design:

* **Partitions by room, done by NATS.** ``PARLEY_WEBHOOK`` (``topology``) sources
  ``PARLEY_EVENTS`` through a subject transform ``{{partition(P,1)}}`` on the room token:
  ``parley.events.room.<token>`` becomes ``parley.webhook.<p>.<token>``. All events of a room
  land in one partition, in stream order.
* **One durable consumer per (endpoint, partition)** (``webhook_<sha256(url)[:16]>_p<p>``), so
  each endpoint has its own cursor: a dead or slow endpoint only holds back its own consumers
  and tasks (``courier``); the others keep normal latency.
* **Order per room per endpoint** (``courier``): a courier fetches a batch, delivers the rooms
  of the batch concurrently but each room's events one at a time, acks an event only after a
  2xx answer, and fetches again only when the whole batch is settled. Open events are kept
  alive with ``in_progress`` while they are retried.
* **Retries** (``backoff``): every non-2xx answer and network error is retried with exponential
  backoff and equal jitter between ``webhook.backoff_min`` and ``backoff_max`` until the event
  is older than ``webhook.retention`` (24 h). Then it is logged (id, event, endpoint, attempts)
  and counted in ``parley_webhook_expired``, and the room moves on.
* **Sharing between instances** (``leases``): a JetStream KV bucket holds ``lease.<p>`` (CAS
  create, renewed with the revision) and ``members.<node>``; each instance holds about
  ``P / members`` partitions and gives extras back after their couriers stopped and naked
  what was still open. Only the lease holder consumes a partition, so in normal operation
  nothing is delivered twice, and a room is never delivered by two instances at once.
* **Crashes**: unacked events are redelivered by JetStream. ``ack_wait`` is shorter than
  ``lease_ttl - renew_interval``, so by the time a dead instance's lease can be taken, its
  open events are already redeliverable and JetStream hands them out before newer ones:
  order per room holds across a crash too. The only duplicates are events whose POST
  succeeded but whose ack was lost with the process; they carry the same id.

Guarantees: at-least-once per endpoint for every webhook event stored while the service (any
instance) comes back within twice ``retention`` (the partitioned stream's ``max_age``);
nothing is dropped while an endpoint recovers within ``retention``; per-room order per
endpoint; duplicates only after a crash or a lost lease, with the same id. A newly configured
endpoint starts ``webhook_service.backfill`` seconds back (60 s), not at the beginning of time.
Limits: an event that keeps failing holds back the other rooms of its partition for that
endpoint (never other endpoints) until it is delivered or expires; at most ``batch`` events
per (endpoint, partition) are in flight.

Metrics (``metrics``): ``parley_webhook_queued`` (held, unsettled), ``_backlog`` (waiting in
JetStream), ``_delivered``, ``_retried``, ``_expired``, ``_skipped`` (internal events) and
``_delivery_latency``; all labelled by endpoint id.
"""
