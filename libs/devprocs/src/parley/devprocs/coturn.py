"""Start a real coturn (``turnserver`` from Debian's ``coturn`` package) for ``parley dev`` and tests.

It runs with the TURN REST API scheme (``use-auth-secret`` + ``static-auth-secret``): a
credential is ``username = "<expiry unix>:<user>"``, ``password = base64(HMAC-SHA1(secret,
username))``, which is what turn-alloc hands out. Everything listens on one loopback address;
loopback peers are allowed so that relayed media can reach an SFU on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from parley.devprocs.errors import ProcessError
from parley.devprocs.processes import ManagedProcess, free_port

INSTALL_HINT = "apt-get install coturn (Debian/Ubuntu; `make test` installs it)"

_MAGIC_COOKIE = 0x2112A442
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101


def turnserver_binary() -> str:
    """The ``turnserver`` path, or a ProcessError that says what to install."""
    found = shutil.which("turnserver") or next(
        (p for p in ("/usr/bin/turnserver", "/usr/sbin/turnserver") if Path(p).exists()), None
    )
    if found is None:
        raise ProcessError(f"turnserver (coturn) not found: {INSTALL_HINT}")
    return found


def coturn_available() -> bool:
    try:
        turnserver_binary()
    except ProcessError:
        return False
    return True


def free_udp_tcp_port(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port free for both TCP and UDP (TURN listens on both)."""
    for _ in range(attempts):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
        return port
    raise ProcessError("no port free for both TCP and UDP")


def stun_binding_ok(host: str, port: int, timeout: float = 0.5) -> bool:
    """Send one STUN Binding request over UDP; True when a success response comes back."""
    txid = os.urandom(12)
    request = struct.pack("!HHI", _BINDING_REQUEST, 0, _MAGIC_COOKIE) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            data, _ = sock.recvfrom(2048)
        except OSError:
            return False
    if len(data) < 20:
        return False
    msg_type, _, cookie = struct.unpack("!HHI", data[:8])
    return msg_type == _BINDING_SUCCESS and cookie == _MAGIC_COOKIE and data[8:20] == txid


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Coturn:
    """A real coturn on ``127.0.0.1`` with use-auth-secret, a free (or given) port and a log file.

    ``stop()`` then ``start()`` restarts it on the same port (fault tests).
    """

    def __init__(
        self,
        secret: str,
        *,
        port: int = 0,
        realm: str = "parley",
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        tls_port: int = 0,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        relay_port_range: tuple[int, int] | None = None,
        user_quota: int = 0,
        udp: bool = True,
        verbose: bool = True,
        extra_args: list[str] | None = None,
    ) -> None:
        if not secret:
            raise ProcessError("coturn needs a static-auth-secret (turn.secret)")
        if (cert_file is None) != (key_file is None):
            raise ProcessError("coturn TLS needs both a certificate and a private key")
        self.host = host
        self.secret = secret
        self.realm = realm
        self.port = port or free_udp_tcp_port(host)
        self.tls = cert_file is not None
        self.tls_port = (tls_port or free_port(host)) if self.tls else 0
        self.work_dir = Path(tempfile.mkdtemp(prefix="parley-coturn-"))
        self.log_path = log_path or self.work_dir / "turnserver.log"
        argv = [
            turnserver_binary(),
            "-n",  # no config file: only these options
            f"--listening-ip={host}",
            f"--relay-ip={host}",
            f"--listening-port={self.port}",
            f"--realm={realm}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--fingerprint",
            "--allow-loopback-peers",
            "--no-cli",
            "--no-rfc5780",  # otherwise it also binds port+1
            "--no-multicast-peers",
            "--no-software-attribute",
            f"--log-file={self.log_path}",
            "--simple-log",
            "--no-stdout-log",
            f"--pidfile={self.work_dir / 'turnserver.pid'}",
            f"--userdb={self.work_dir / 'turndb'}",  # not the shared /var/lib/turn/turndb
            "--no-dtls",
        ]
        if self.tls:
            argv += [f"--tls-listening-port={self.tls_port}", f"--cert={cert_file}", f"--pkey={key_file}"]
        else:
            argv.append("--no-tls")
        if relay_port_range is not None:
            argv += [f"--min-port={relay_port_range[0]}", f"--max-port={relay_port_range[1]}"]
        self.udp = udp
        if not udp:
            argv.append("--no-udp")  # TCP (and TLS) listeners only
        if verbose:
            argv.append("--verbose")  # one line per allocation, permission and refresh (with user)
        if user_quota:
            argv.append(f"--user-quota={user_quota}")
        argv += extra_args or []
        self._process = ManagedProcess("coturn", argv, dict(os.environ), self.work_dir / "stdout.log")

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def turn_url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def turn_section(self, region: str = "") -> dict[str, Any]:
        """The config ``turn`` keys that point turn-alloc at this coturn (``parley dev``)."""
        transports = ["udp", "tcp"] if self.udp else ["tcp"]
        if self.tls:
            transports.append("tls")
        server = {"host": self.host, "port": self.port, "tls_port": self.tls_port, "transports": transports}
        return {"enabled": True, "secret": self.secret, "servers": [{**server, "region": region}]}

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it answers STUN on its UDP port (or accepts TCP without UDP)."""
        self._process.start()
        proc = self._process.proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProcessError(
                    f"turnserver exited with code {proc.returncode} at start; log tail:\n{self.log_tail()}"
                )
            if self.udp and stun_binding_ok(self.host, self.port, timeout=0.2):
                return
            if not self.udp and _tcp_open(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise ProcessError(
            f"turnserver did not answer STUN on {self.host}:{self.port} within {timeout}s; "
            f"log tail:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_text(self) -> str:
        """Everything coturn logged so far (the log file; ``--simple-log`` keeps one file)."""
        texts = []
        for path in (self.log_path, self.work_dir / "stdout.log"):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def __enter__(self) -> Coturn:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
