"""Partition leases in a JetStream KV bucket: how instances share rooms without sharing a room.

Keys (the bucket's TTL is ``lease_ttl``, so a key that is not rewritten disappears):

* ``members.<node>``: rewritten by every live instance each ``renew_interval``;
* ``lease.<p>``: the instance delivering partition ``p``; created with compare-and-set
  (``create`` fails if it exists) and renewed with ``update(last=revision)``.

Each tick an instance aims at ``ceil(partitions / members)`` partitions, gives back extras
(after its workers stopped and settled their events) and claims free ones. Renewal runs in its
own loop, never behind a tick: giving a partition back can take seconds (in-flight POSTs
settle), and a renewal waiting behind it would let the instance's other leases, and the one
being given back, expire while their workers still deliver, so a second instance could deliver
the same partition at the same time. A crashed instance's leases expire after ``lease_ttl``;
its unacked events were redeliverable already (``ack_wait`` < ``lease_ttl - renew_interval``),
so the next owner sees them before anything newer of the same room.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Awaitable, Callable

import nats.js.errors
from nats.js.kv import KeyValue

from parley.observability import get_logger

log = get_logger("parley.webhook.leases")

PartitionCallback = Callable[[int], Awaitable[None]]


def lease_key(partition: int) -> str:
    return f"lease.{partition}"


def member_key(node_id: str) -> str:
    return f"members.{node_id}"


class LeaseManager:
    """Holds a fair share of partitions; calls ``on_acquire``/``on_release`` around ownership."""

    def __init__(
        self,
        kv: KeyValue,
        node_id: str,
        partitions: int,
        *,
        ttl: float,
        renew_interval: float,
        on_acquire: PartitionCallback,
        on_release: PartitionCallback,
    ) -> None:
        self._kv = kv
        self._node = node_id
        self._partitions = partitions
        self._ttl = ttl
        self._renew_interval = renew_interval
        self._on_acquire = on_acquire
        self._on_release = on_release
        self._owned: dict[int, int] = {}
        self._renewed_at: dict[int, float] = {}
        self._lost: set[int] = set()
        """Leases the renewal loop found taken or expired; the tick stops their workers."""
        self._kv_lock = asyncio.Lock()
        """Serialises lease renewals with lease deletion (a revision is used once)."""
        self._order = sorted(
            range(partitions), key=lambda p: hashlib.sha256(f"{node_id}/{p}".encode()).digest()
        )

    @property
    def owned(self) -> list[int]:
        return sorted(self._owned)

    async def run(self) -> None:
        """Renew and tick until cancelled; a failing tick (bus down) is retried on the next one."""
        renewing = asyncio.ensure_future(self._renew_loop())
        try:
            while True:
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("lease tick failed", error=f"{type(exc).__name__}: {exc}")
                await self._drop_stale()
                await asyncio.sleep(self._renew_interval)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew_loop(self) -> None:
        while True:
            try:
                await self._renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # bus down: _drop_stale stops what we cannot keep
                log.warning("lease renewal failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._renew_interval)

    async def tick(self) -> None:
        await self._kv.put(member_key(self._node), self._node.encode())
        for partition in sorted(self._lost):
            self._lost.discard(partition)
            await self._on_release(partition)
        keys = await self._keys()
        members = max(1, sum(1 for k in keys if k.startswith("members.")))
        share = math.ceil(self._partitions / members)
        for partition in sorted(self._owned, reverse=True)[: max(0, len(self._owned) - share)]:
            await self.release(partition)
        for partition in self._order:
            if len(self._owned) >= share:
                break
            if partition in self._owned or lease_key(partition) in keys:
                continue
            try:
                revision = await self._kv.create(lease_key(partition), self._node.encode())
            except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
                continue  # somebody else was faster (or its tombstone expired meanwhile): next tick
            self._owned[partition] = revision
            self._renewed_at[partition] = time.monotonic()
            log.info("partition acquired", partition=partition, share=share, members=members)
            await self._on_acquire(partition)

    async def release(self, partition: int) -> None:
        """Stop delivering ``partition`` (its workers settle first), then free the lease.

        The lease stays ours, and renewed, until the workers have stopped: nobody else may
        start delivering the partition before then.
        """
        await self._on_release(partition)
        async with self._kv_lock:
            revision = self._owned.pop(partition, None)
            self._renewed_at.pop(partition, None)
            self._lost.discard(partition)
            if revision is not None:
                await self._delete(partition, revision)
        log.info("partition released", partition=partition)

    async def _delete(self, partition: int, revision: int) -> None:
        try:
            await self._kv.delete(lease_key(partition), last=revision)
        except Exception as exc:  # taken over or bus down: the TTL frees it anyway
            log.info("lease not deleted", partition=partition, error=str(exc))

    async def release_all(self) -> None:
        """Give every partition back (drain); leases stay renewed while their workers settle."""
        renewing = asyncio.ensure_future(self._renew_loop())
        try:
            for partition in list(self._owned):
                await self.release(partition)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        try:
            await self._kv.delete(member_key(self._node))
        except Exception:
            pass

    async def _renew(self) -> None:
        """Rewrite every lease we hold; one taken over (or expired) is handed to the tick to stop."""
        async with self._kv_lock:
            for partition, revision in list(self._owned.items()):
                try:
                    self._owned[partition] = await self._kv.update(
                        lease_key(partition), self._node.encode(), last=revision
                    )
                    self._renewed_at[partition] = time.monotonic()
                except nats.js.errors.KeyWrongLastSequenceError:
                    log.warning("partition lease lost", partition=partition)
                    self._owned.pop(partition, None)
                    self._renewed_at.pop(partition, None)
                    self._lost.add(partition)

    async def _drop_stale(self) -> None:
        """Leases we could not renew for most of their TTL may be somebody else's by now."""
        limit = self._ttl - self._renew_interval
        for partition in list(self._owned):
            if time.monotonic() - self._renewed_at.get(partition, 0.0) > limit:
                log.warning("partition lease unrenewable; stopping it", partition=partition)
                self._owned.pop(partition, None)
                self._renewed_at.pop(partition, None)
                await self._on_release(partition)

    async def _keys(self) -> set[str]:
        try:
            return set(await self._kv.keys())
        except nats.js.errors.NoKeysError:
            return set()
