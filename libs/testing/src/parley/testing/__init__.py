"""pytest fixtures that start real parts: nats-server, Valkey and the whole Parley stack."""

from parley.testing.poll import poll_until

__all__ = ["poll_until"]
