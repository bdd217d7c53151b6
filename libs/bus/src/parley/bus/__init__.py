"""The one place that knows NATS: typed subjects, publish/subscribe, queue groups,
request/reply with timeouts and error codes, JetStream streams, consumers and KV.

Every RPC is declared once in ``rpcs`` (``Bus.call``/``Bus.serve`` take the declaration), one-way
flows in ``topics``. ``Bus`` is the seam (``interfaces.py``): ``NatsBus`` for real, ``MemoryBus`` for
unit tests."""

from parley.bus import rpcs, subjects, topics
from parley.bus.binding import Binding, bind, serve_all
from parley.bus.contract import Rpc, Scope, Topic
from parley.bus.delivery import Delivery, Handler
from parley.bus.errors import BusError, ErrorCode, NoResponders, RpcError, RpcTimeout
from parley.bus.interfaces import Bus, DurablePublisher, Subscription
from parley.bus.memory import MemoryBus
from parley.bus.nats_bus import NatsBus, connect

__all__ = [
    "Binding",
    "Bus",
    "BusError",
    "Delivery",
    "DurablePublisher",
    "ErrorCode",
    "Handler",
    "MemoryBus",
    "NatsBus",
    "NoResponders",
    "Rpc",
    "RpcError",
    "RpcTimeout",
    "Scope",
    "Subscription",
    "Topic",
    "bind",
    "connect",
    "rpcs",
    "serve_all",
    "subjects",
    "topics",
]
