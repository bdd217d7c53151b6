"""Process launchers for `parley dev`, the tests and the benchmarks: nats-server, Valkey, coturn,
SeaweedFS (S3, for the egress tests) and the Parley services as child processes. Services never import this (it pulls the
nats-server and Valkey binaries); they run on ``parley.runtime``."""

from parley.devprocs.errors import ProcessError
from parley.devprocs.processes import (
    READY_SERVICES,
    SERVICES,
    TEST_SERVICES,
    ManagedProcess,
    NatsServer,
    ValkeyServer,
    free_port,
    service_process,
    wait_for_http,
)
from parley.devprocs.seaweed import SeaweedS3
from parley.devprocs.sentinel import ValkeySentinelSet

__all__ = [
    "READY_SERVICES",
    "SERVICES",
    "TEST_SERVICES",
    "ManagedProcess",
    "NatsServer",
    "ProcessError",
    "SeaweedS3",
    "ValkeySentinelSet",
    "ValkeyServer",
    "free_port",
    "service_process",
    "wait_for_http",
]
