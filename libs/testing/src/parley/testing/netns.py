"""Network namespaces for tests: a peer behind its own link that can be throttled, made lossy or cut.

``NetNamespace()`` creates a namespace ``parley-t-<pid>-<index>`` joined to the root namespace by a
veth pair on its own /30 of ``10.77.0.0/16``: ``host_ip`` (root namespace side, interface
``plyv<index>``) and ``ns_ip`` (inside, interface ``eth0``, default route via ``host_ip``). Traffic
from inside to anything outside ``10.77.0.0/16`` is rejected, so a test can only reach the host (and
the stack listening there) and its own namespaces. ``close()`` (or leaving the ``with`` block) kills
what still runs inside and deletes the link and the namespace; namespaces of dead test processes are
removed by the next ``NetNamespace()``.

Links: ``limit(down_kbps=, up_kbps=)`` shapes with a tc token bucket (the host side's egress is the
namespace's downlink, the inside egress its uplink); ``loss(fraction)`` and ``block_udp()`` are
iptables rules inside the namespace. Every call runs a few ``ip``/``tc``/``iptables`` commands
(milliseconds), synchronously. Needs root, iproute2 and iptables (scripts/install-system-deps.sh).

The stack has to listen on ``host_ip`` too: ``make_stack(config=stack_config(ns))``; processes inside
use ``ns.ws_url(stack)``. ``ns.prefix`` runs a command inside (``[*ns.prefix, "python", ...]``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parley.testing.stack import Stack

NAME_PREFIX = "parley-t-"
LINK_PREFIX = "plyv"
INSIDE_LINK = "eth0"
RANGE = ipaddress.IPv4Network("10.77.0.0/16")
LOCK_PATH = Path(tempfile.gettempdir()) / "parley-netns.lock"
_NAME = re.compile(rf"^{re.escape(NAME_PREFIX)}(\d+)-(\d+)$")
_CHAINS = {"down": ("INPUT", "-i"), "up": ("OUTPUT", "-o")}
"""Own iptables chain per direction inside the namespace: (hooked from, interface option)."""
_open: set[NetNamespace] = set()


class NetnsError(RuntimeError):
    """An ``ip``/``tc``/``iptables`` command failed."""


def _cmd(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class NetNamespace:
    """A network namespace with a veth link to the root namespace; see the module docstring."""

    def __init__(self) -> None:
        with _lock():
            cleanup_stale()
            self.index = _free_index()
            net = ipaddress.IPv4Network((int(RANGE.network_address) + 4 * self.index, 30))
            self.network = net
            self.host_ip = str(net[1])
            self.ns_ip = str(net[2])
            self.name = f"{NAME_PREFIX}{os.getpid()}-{self.index}"
            self.host_link = f"{LINK_PREFIX}{self.index}"
            self._loss = {"down": 0.0, "up": 0.0}
            self._udp_blocked = False
            self._started: list[subprocess.Popen[bytes]] = []
            _open.add(self)
            try:
                self._create()
            except BaseException:
                _open.discard(self)
                self._delete()
                raise

    def _create(self) -> None:
        _cmd("ip", "netns", "add", self.name)
        peer = ["peer", "name", INSIDE_LINK, "netns", self.name]
        _cmd("ip", "link", "add", self.host_link, "type", "veth", *peer)
        _cmd("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
        _cmd("ip", "link", "set", self.host_link, "up")
        self.ip("addr", "add", f"{self.ns_ip}/30", "dev", INSIDE_LINK)
        self.ip("link", "set", "lo", "up")
        self.ip("link", "set", INSIDE_LINK, "up")
        self.ip("route", "add", "default", "via", self.host_ip)
        # The fence: nothing leaves the namespace for an address outside the test range.
        self.iptables("-A", "OUTPUT", "-o", INSIDE_LINK, "!", "-d", str(RANGE), "-j", "REJECT")
        for direction, (hook, flag) in _CHAINS.items():
            self.iptables("-N", f"parley-{direction}")
            self.iptables("-A", hook, flag, INSIDE_LINK, "-j", f"parley-{direction}")

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill the processes still inside, delete the link and the namespace; idempotent."""
        if self not in _open:
            return
        _open.discard(self)
        with _lock():
            self._delete()

    def _delete(self) -> None:
        """The link goes first: a namespace with processes still inside outlives ``netns del``.
        What ``popen`` started is killed by its pid too: one started a moment ago may not have
        entered the namespace yet (``ip netns pids`` misses it)."""
        for started in self._started:
            if started.poll() is None:
                started.kill()
        for pid in _cmd("ip", "netns", "pids", self.name, check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        _cmd("ip", "link", "del", self.host_link, check=False)
        _cmd("ip", "netns", "del", self.name, check=False)

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> NetNamespace:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running things inside ------------------------------------------------------------------
    @property
    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside: ``[*ns.prefix, "node", "driver.mjs"]``."""
        return ["ip", "netns", "exec", self.name]

    def run(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``subprocess.run`` inside (text mode, output captured, checked, unless overridden)."""
        options: dict[str, Any] = {"capture_output": True, "text": True, "check": True, "timeout": 60}
        options.update(kwargs)
        result: subprocess.CompletedProcess[str] = subprocess.run([*self.prefix, *cmd], **options)
        return result

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen`` inside; ``close()`` kills it if it still runs."""
        started = subprocess.Popen([*self.prefix, *cmd], **kwargs)
        self._started.append(started)
        return started

    def ip(self, *args: str) -> str:
        return _cmd("ip", "-n", self.name, *args)

    def iptables(self, *args: str) -> str:
        return _cmd(*self.prefix, "iptables", "-w", *args)

    # -- the link -------------------------------------------------------------------------------
    def limit(
        self, down_kbps: float | None = None, up_kbps: float | None = None, *, queue_ms: int = 200
    ) -> None:
        """Token-bucket rates (kbit/s) per direction; ``None`` = unlimited. Replaces earlier limits.

        ``queue_ms`` bounds the queue before the bucket drops (a router's buffer)."""
        _shape(["tc"], self.host_link, down_kbps, queue_ms)
        _shape([*self.prefix, "tc"], INSIDE_LINK, up_kbps, queue_ms)

    def unlimit(self) -> None:
        self.limit()

    def loss(self, fraction: float, direction: str = "both") -> None:
        """Drop ``fraction`` of the packets at random, ``down`` (into), ``up`` (out of) or ``both``."""
        if not 0 <= fraction < 1:
            raise ValueError(f"loss fraction {fraction} is not in [0, 1)")
        for d in ("down", "up") if direction == "both" else (direction,):
            self._loss[d] = fraction
        self._rules()

    def block_udp(self) -> None:
        """Drop every UDP packet in and out (ICE breaks; TCP signalling stays up)."""
        self._udp_blocked = True
        self._rules()

    def unblock_udp(self) -> None:
        self._udp_blocked = False
        self._rules()

    @contextlib.contextmanager
    def udp_blocked(self) -> Iterator[None]:
        self.block_udp()
        try:
            yield
        finally:
            self.unblock_udp()

    def _rules(self) -> None:
        for direction in _CHAINS:
            chain = f"parley-{direction}"
            self.iptables("-F", chain)
            if self._udp_blocked:
                self.iptables("-A", chain, "-p", "udp", "-j", "DROP")
            if fraction := self._loss[direction]:
                stat = ["-m", "statistic", "--mode", "random", "--probability", f"{fraction:.4f}"]
                self.iptables("-A", chain, *stat, "-j", "DROP")

    # -- addresses for the stack ----------------------------------------------------------------
    def ws_url(self, stack: Stack) -> str:
        """The edge's WebSocket URL as reached from inside."""
        return f"ws://{self.host_ip}:{stack.edge().port}"

    def http_url(self, stack: Stack) -> str:
        return f"http://{self.host_ip}:{stack.edge().port}"

    def chromium_args(self, stack: Stack) -> list[str]:
        """Chromium flags for a page from ``http_url``: not localhost, so it needs to be treated as a
        secure origin for getUserMedia."""
        return [f"--unsafely-treat-insecure-origin-as-secure={self.http_url(stack)}"]

    def __repr__(self) -> str:
        return f"NetNamespace({self.name}, host {self.host_ip}, inside {self.ns_ip})"


def stack_config(*namespaces: NetNamespace) -> dict[str, Any]:
    """Config for ``make_stack`` so the edge and the SFU's ICE candidates are reachable from inside:
    the edge also binds each ``host_ip``, the SFU also gathers host candidates there."""
    addresses = [ns.host_ip for ns in namespaces]
    return {"bind_addresses": ["127.0.0.1", *addresses], "rtc": {"extra_host_addresses": addresses}}


def leftovers() -> list[str]:
    """Namespaces and host links of this module that exist now (any process's)."""
    names = [n for n in _netns_names() if n.startswith(NAME_PREFIX)]
    return names + [link for link in _links() if link.startswith(LINK_PREFIX)]


def cleanup_stale() -> None:
    """Delete namespaces (and their links) left by test processes that no longer run."""
    for name in _netns_names():
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            _cmd("ip", "link", "del", f"{LINK_PREFIX}{match.group(2)}", check=False)
            _cmd("ip", "netns", "del", name, check=False)
    owned = {m.group(2) for n in _netns_names() if (m := _NAME.match(n))}
    for link in _links():
        if link.startswith(LINK_PREFIX) and link[len(LINK_PREFIX) :] not in owned:
            _cmd("ip", "link", "del", link, check=False)


def _shape(tc: list[str], link: str, kbps: float | None, queue_ms: int) -> None:
    if kbps is None:
        if "tbf" in _cmd(*tc, "qdisc", "show", "dev", link, "root"):
            _cmd(*tc, "qdisc", "del", "dev", link, "root")
        return
    rate_bytes = kbps * 1000 / 8
    burst = max(6000, int(rate_bytes / 100))  # 10 ms of the rate, at least four full frames
    args = ["qdisc", "replace", "dev", link, "root", "tbf", "rate", f"{int(kbps * 1000)}bit"]
    _cmd(*tc, *args, "burst", str(burst), "latency", f"{queue_ms}ms")


def _free_index() -> int:
    """The first /30 of RANGE that overlaps no address or route of the root namespace."""
    taken: list[ipaddress.IPv4Network] = []
    for line in _cmd("ip", "-o", "-4", "addr", "show").splitlines():
        if m := re.search(r"inet (\S+)", line):
            taken.append(ipaddress.IPv4Interface(m.group(1)).network)
    for line in _cmd("ip", "-4", "route", "show", "table", "all").splitlines():
        first = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            net = ipaddress.IPv4Network(first, strict=False)
            if net.prefixlen > 0:
                taken.append(net)
    used = {int(m.group(2)) for n in _netns_names() if (m := _NAME.match(n))}
    for index, net in enumerate(RANGE.subnets(new_prefix=30)):
        if index not in used and not any(net.overlaps(t) for t in taken):
            return index
    raise NetnsError(f"no free /30 left in {RANGE}")


def _netns_names() -> list[str]:
    return [line.split()[0] for line in _cmd("ip", "netns", "list").splitlines() if line.strip()]


def _links() -> list[str]:
    names = []
    for line in _cmd("ip", "-o", "link", "show").splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One process at a time picks a subnet, creates or deletes (across parallel test runs)."""
    with LOCK_PATH.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@atexit.register
def _close_all() -> None:
    for ns in list(_open):
        ns.close()
