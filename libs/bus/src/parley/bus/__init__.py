"""The one place that knows NATS: typed subjects, publish/subscribe, queue groups,
request/reply with timeouts and error codes, JetStream streams, consumers and KV."""

from parley.bus import subjects
from parley.bus.errors import BusError, ErrorCode, NoResponders, RpcError, RpcTimeout
from parley.bus.nats_bus import Bus, Delivery, Subscription, connect

__all__ = [
    "Bus",
    "BusError",
    "Delivery",
    "ErrorCode",
    "NoResponders",
    "RpcError",
    "RpcTimeout",
    "Subscription",
    "connect",
    "subjects",
]
