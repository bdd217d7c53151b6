"""pytest fixtures that start real parts: nats-server, Valkey and the whole Parley stack."""

from parley.testing.lost_reply import LostReplyProxy
from parley.testing.netns import NetNamespace, stack_config
from parley.testing.poll import poll_until
from parley.testing.scripts import load_script
from parley.testing.stack import TEST_API_KEY, TEST_API_SECRET, Stack
from parley.testing.tcp_proxy import TcpProxy

__all__ = [
    "TEST_API_KEY",
    "TEST_API_SECRET",
    "LostReplyProxy",
    "NetNamespace",
    "Stack",
    "TcpProxy",
    "load_script",
    "poll_until",
    "stack_config",
]
