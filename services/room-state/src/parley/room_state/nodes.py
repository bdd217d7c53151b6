"""SFU node registry: NodeStats heartbeats kept in Redis with a TTL; placement on the least loaded node."""

from __future__ import annotations

from parley.bus import Bus, Delivery, Subscription, subjects
from parley.observability import get_logger
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.protocol.ids import now_ms
from parley.room_state.store import Store

log = get_logger("parley.room_state.nodes")


class NodeRegistry:
    def __init__(self, bus: Bus, store: Store, ttl: float) -> None:
        self._bus = bus
        self._store = store
        self._ttl_ms = int(ttl * 1000)
        self._sub: Subscription | None = None
        self._seen: dict[str, tuple[int, node_pb2.NodeStats]] = {}
        """Heartbeats this instance received (every instance receives all of them)."""

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(subjects.SFU_NODES, self._on_stats)

    async def aclose(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_stats(self, delivery: Delivery) -> None:
        stats = node_pb2.NodeStats.FromString(delivery.data)
        if stats.node_id:
            now = now_ms()
            self._seen[stats.node_id] = (now, stats)
            await self._store.put_node(stats, now, self._ttl_ms)

    def lost(self) -> list[str]:
        """Nodes whose heartbeats this instance received and that stopped for longer than the TTL
        (each reported once; a node that comes back is watched again)."""
        now = now_ms()
        gone = [node for node, (seen_at, _) in self._seen.items() if now - seen_at > self._ttl_ms]
        for node in gone:
            del self._seen[node]
        return gone

    async def live(self) -> list[node_pb2.NodeStats]:
        """From memory when this instance has fresh heartbeats, else from Redis (e.g. just restarted)."""
        now = now_ms()
        fresh = [stats for seen_at, stats in self._seen.values() if now - seen_at <= self._ttl_ms]
        if fresh:
            return fresh
        return await self._store.live_nodes(now, self._ttl_ms)

    async def placement(self, preferred: str = "", exclude: str = "") -> tuple[set[str], str]:
        """Live node ids and the node a new room goes to ("" if none can take one)."""
        nodes = await self.live()
        live = {n.node_id for n in nodes}
        candidates = [n for n in nodes if not n.draining and n.node_id != exclude]
        if preferred and any(n.node_id == preferred for n in candidates):
            return live, preferred
        if not candidates:
            return live, ""
        best = min(candidates, key=lambda n: (n.load, n.num_participants, n.num_rooms, n.node_id))
        return live, best.node_id
