"""Process launchers for `parley dev`, the tests and the benchmarks: nats-server, Valkey, coturn
and the Parley services as child processes. Services never import this (it pulls the
nats-server and Valkey binaries); they run on ``parley.runtime``."""

from parley.devprocs.errors import ProcessError
from parley.devprocs.processes import (
    READY_SERVICES,
    SERVICES,
    ManagedProcess,
    NatsServer,
    ValkeyServer,
    free_port,
    service_process,
    wait_for_http,
)
from parley.devprocs.sentinel import ValkeySentinelSet

__all__ = [
    "READY_SERVICES",
    "SERVICES",
    "ManagedProcess",
    "NatsServer",
    "ProcessError",
    "ValkeySentinelSet",
    "ValkeyServer",
    "free_port",
    "service_process",
    "wait_for_http",
]
