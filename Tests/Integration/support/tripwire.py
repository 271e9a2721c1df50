"""The unrouted-dial tripwire: the bridge never opens a connection its config does not route.

Checked from the far side, across the whole suite. Every `tls-bridge` process the harness starts with a
`--config` is registered here (`TRIPWIRE.register(pid, config_path)`). Every Python test server that plays a
gateway or a backend calls `TRIPWIRE.on_accept(sock, name)` for each connection it accepts; that finds the
peer's socket (its inode, from the kernel's sock_diag netlink lookup by address, or /proc/net/tcp{,6} where
netlink is unavailable), looks for `socket:[inode]` among the open descriptors of the registered bridge
processes only, and, when a bridge owns it, checks that the server's own address is one the bridge's config
routes: an `[[upstream]]` or `[[backend]]` address, port included, with names resolved as the bridge resolves
them (through the in-process `DnsStub` at `[dns].nameservers`, plus localhost; else the system resolver). A
connection from a bridge to anything else is recorded as a `Violation`; conftest.py fails the test in which
one was recorded, and prints the session's counts at the end.

A lookup that cannot decide (the peer socket already closed, a /proc or netlink error, an unreadable config)
counts as unknown, never as a violation, and never raises into the server's thread.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import threading
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .dns import DnsStub

NAME_TIMEOUT = 2.0     # seconds one system-resolver lookup may take before the name is left unresolved
UNKNOWN_EXAMPLES = 20  # unknown lookups kept with their details for the summary

Destination = tuple[str, int]  # (normalised IP, port)

# --- which peer socket: sock_diag netlink, /proc/net/tcp as the fallback --------------------------------------

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
INET_DIAG_NOCOOKIE = 0xFFFFFFFF


class KernelLookupFailed(Exception):
    """The kernel could not be asked (not: the socket does not exist)."""


def _ip_bytes(family: int, ip: str) -> bytes:
    raw = socket.inet_pton(family, ip)
    return raw + bytes(16 - len(raw))


def _diag_inode(family: int, local: Destination, remote: Destination) -> int | None:
    """Inode of the TCP socket whose own address is `local` and whose peer is `remote`: 0 for a socket no
    process holds any more (orphaned), None when there is none."""
    sockid = (struct.pack("!HH", local[1], remote[1]) + _ip_bytes(family, local[0]) + _ip_bytes(family, remote[0])
              + struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE))
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.send(header + request)
            data = nl.recv(8192)
    except OSError as exc:
        raise KernelLookupFailed(f"sock_diag: {exc}") from None
    if len(data) < 20:
        raise KernelLookupFailed(f"sock_diag: short answer of {len(data)} bytes")
    kind = struct.unpack_from("=H", data, 4)[0]
    if kind == NLMSG_ERROR:
        code = -struct.unpack_from("=i", data, 16)[0]
        if code == errno.ENOENT:
            return None
        raise KernelLookupFailed(f"sock_diag: {os.strerror(code)}")
    if kind != SOCK_DIAG_BY_FAMILY or len(data) < 16 + 4 + 48 + 20:
        raise KernelLookupFailed(f"sock_diag: unexpected message type {kind}")
    return struct.unpack_from("=I", data, 16 + 4 + 48 + 16)[0]  # inet_diag_msg.idiag_inode


def _proc_hex(family: int, dest: Destination) -> str:
    raw = socket.inet_pton(family, dest[0])
    words = "".join(f"{struct.unpack('=I', raw[i:i + 4])[0]:08X}" for i in range(0, len(raw), 4))
    return f"{words}:{dest[1]:04X}"


def _proc_inode(family: int, local: Destination, remote: Destination) -> int | None:
    """The same answer from /proc/net/tcp or tcp6 (slower: the kernel prints every socket)."""
    table = "/proc/net/tcp" if family == socket.AF_INET else "/proc/net/tcp6"
    needle = f" {_proc_hex(family, local)} {_proc_hex(family, remote)} "
    try:
        with open(table) as f:
            text = f.read()
    except OSError as exc:
        raise KernelLookupFailed(f"{table}: {exc}") from None
    at = text.find(needle)
    if at < 0:
        return None
    line = text[text.rfind("\n", 0, at) + 1:text.find("\n", at)]
    return int(line.split()[9])


def _mapped(dest: Destination) -> Destination:
    return (f"::ffff:{dest[0]}", dest[1])


def peer_inode(local: Destination, remote: Destination, *, use_netlink: bool = True) -> int | None:
    """Inode of the socket at `local` connected to `remote` (an IPv4 pair may also sit in an IPv6 socket as
    ::ffff:a.b.c.d). Raises KernelLookupFailed if the kernel could not be asked."""
    lookup = _diag_inode if use_netlink else _proc_inode
    if ":" in local[0]:
        return lookup(socket.AF_INET6, local, remote)
    inode = lookup(socket.AF_INET, local, remote)
    if inode is None:
        inode = lookup(socket.AF_INET6, _mapped(local), _mapped(remote))
    return inode


# --- what a config routes ----------------------------------------------------------------------------------

def normalise(ip: str) -> str:
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int | None]:
    """"host:port", "[v6]:port", a bare IPv6 literal or (with a default port) a bare host."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") > 1:
        return text, default_port
    host, sep, port = text.rpartition(":")
    return (host, int(port)) if sep else (text, default_port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        return False


def _system_resolve(host: str, port: int) -> set[str]:
    """getaddrinfo, bounded: a name nobody answers for (a production name in a test config) is left
    unresolved after NAME_TIMEOUT instead of blocking a server thread."""
    found: list[set[str]] = []

    def run():
        try:
            found.append({normalise(info[4][0])
                          for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
        except (OSError, ValueError):
            found.append(set())

    thread = threading.Thread(target=run, name="tripwire-resolve", daemon=True)
    thread.start()
    thread.join(NAME_TIMEOUT)
    return found[0] if found else set()


@dataclass
class RoutedSet:
    """The destinations of one config file: `[[upstream]]` and `[[backend]]` addresses, names resolved the
    way the bridge resolves them, at the time of asking (a name's answer can change under a running test)."""

    config_path: Path
    literal: set[Destination] = field(default_factory=set)
    names: set[tuple[str, int]] = field(default_factory=set)
    nameservers: list[Destination] = field(default_factory=list)
    error: str | None = None
    mtime: float | None = None

    @classmethod
    def read(cls, config_path: Path) -> "RoutedSet":
        routed = cls(Path(config_path))
        routed.refresh_file()
        return routed

    def refresh_file(self) -> None:
        """(Re-)read the file; entries of every version read stay routed (a reload may be in flight)."""
        try:
            stat = os.stat(self.config_path)
            if stat.st_mtime == self.mtime:
                return
            config = tomllib.loads(self.config_path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self.error = self.error or f"{type(exc).__name__}: {exc}"
            return
        self.mtime = stat.st_mtime
        self.error = None
        servers = (config.get("dns") or {}).get("nameservers") or []
        self.nameservers = [(normalise(h), p) for h, p in (split_host_port(str(s), 53) for s in servers)]
        for section in ("upstream", "backend"):
            for entry in config.get(section) or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
                    continue
                host, port = split_host_port(entry["address"])
                if port is None:
                    continue
                if _is_ip(host):
                    self.literal.add((normalise(host), port))
                else:
                    self.names.add((host.lower().rstrip("."), port))

    def resolve(self) -> set[Destination]:
        """Every destination as the bridge would reach it now."""
        out = set(self.literal)
        for host, port in self.names:
            for ip in self._addresses(host, port):
                out.add((ip, port))
        return out

    def _addresses(self, host: str, port: int) -> set[str]:
        if not self.nameservers:
            return _system_resolve(host, port)
        # Configured name servers: only they answer, besides the localhost entries evdns always has.
        found = {"127.0.0.1", "::1"} if host == "localhost" else set()
        stubs = DnsStub.running_stubs()
        for server in self.nameservers:
            stub = stubs.get(server)
            answer = stub.records.get(host) if stub is not None else None
            if answer is not None:
                found |= {normalise(a) for a in ([answer] if isinstance(answer, str) else answer)}
        return found

    def describe(self) -> str:
        items = sorted(f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}" for ip, port in self.literal)
        items += sorted(f"{host}:{port}" for host, port in self.names)
        return ", ".join(items) or "nothing"


# --- the registry -------------------------------------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: tells a registered process from a later one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass
class RegisteredBridge:
    pid: int
    config_path: Path
    routed: RoutedSet
    start_time: str | None
    resolved: set[Destination] = field(default_factory=set)

    def alive(self) -> bool:
        return self.start_time is not None and _start_time(self.pid) == self.start_time

    def routes(self, dest: Destination) -> bool:
        if dest in self.resolved:
            return True
        self.routed.refresh_file()   # a reload, or a name whose answer changed since the last look
        self.resolved |= self.routed.resolve()
        return dest in self.resolved


@dataclass
class Violation:
    """A bridge process connected to a test server whose address its config does not route."""

    test: str | None
    server: str
    destination: Destination
    peer: Destination
    pid: int
    config_path: Path
    routed: str

    def __str__(self) -> str:
        return (f"tls-bridge pid {self.pid} (config {self.config_path}) connected from "
                f"{self.peer[0]}:{self.peer[1]} to {self.destination[0]}:{self.destination[1]} "
                f"(test server {self.server!r}), which its config does not route; it routes: {self.routed}"
                f" [during {self.test or 'no test'}]")


class Tripwire:
    """Registered bridge processes, the per-accept check and its counts. One instance: `TRIPWIRE`."""

    def __init__(self, *, use_netlink: bool = True):
        self.use_netlink = use_netlink
        self.current_test: str | None = None
        self.counts: Counter = Counter()
        self.unknown_reasons: Counter = Counter()
        self.unknown_examples: list[str] = []
        self.attributed_pids: set[int] = set()
        self._bridges: dict[int, RegisteredBridge] = {}
        self._owners: dict[int, int] = {}   # socket inode → pid, from the last scan of the bridges' fds
        self._pending: list[Violation] = []
        self._lock = threading.Lock()

    # registration ------------------------------------------------------------------------------------------
    def routed_set(self, config_path: Path) -> RoutedSet:
        """Read before the process starts, so registering right after the fork is quick."""
        return RoutedSet.read(Path(config_path))

    def register(self, pid: int, config_path: Path, routed: RoutedSet | None = None) -> None:
        """Start attributing connections from `pid` to the config at `config_path` (replacing any earlier
        registration of that pid)."""
        routed = routed or self.routed_set(config_path)
        # Names answered by a stub are resolved now, while the stub surely runs; system names when needed.
        resolved = routed.resolve() if routed.nameservers else set(routed.literal)
        entry = RegisteredBridge(pid, Path(config_path), routed, _start_time(pid), resolved)
        with self._lock:
            self._bridges[pid] = entry
            self.counts["bridges registered"] += 1

    def unregister(self, pid: int) -> None:
        with self._lock:
            self._bridges.pop(pid, None)

    # the check ---------------------------------------------------------------------------------------------
    def on_accept(self, sock: socket.socket, server: str) -> None:
        """Called by a test server for each accepted connection. Never raises."""
        try:
            local = sock.getsockname()
            peer = sock.getpeername()
            here = (normalise(local[0]), local[1])
            there = (normalise(peer[0]), peer[1])
        except (OSError, ValueError) as exc:
            with self._lock:
                self.counts["accepted"] += 1
                self._unknown("peer address unreadable", f"{server}: {exc}")
            return
        try:
            with self._lock:
                self.counts["accepted"] += 1
                if not self._bridges:
                    self.counts["no bridge running"] += 1
                    return
                self._check(server, here, there, (local[0], local[1]), (peer[0], peer[1]))
        except Exception as exc:  # a defect here must not take a test server down with it
            with self._lock:
                self._unknown(f"tripwire error {type(exc).__name__}", f"{server} {there}: {exc}")

    def _check(self, server: str, here: Destination, there: Destination, raw_here, raw_there) -> None:
        try:
            inode = peer_inode(raw_there, raw_here, use_netlink=self.use_netlink)
        except (KernelLookupFailed, OSError) as exc:
            self._unknown("kernel lookup failed", f"{server} {there}: {exc}")
            return
        if inode is None:
            self._unknown("peer socket gone before the lookup", f"{server} from {there}")
            return
        if inode == 0:
            self._unknown("peer socket already closed (orphaned)", f"{server} from {there}")
            return
        pid = self._owner(inode)
        if pid is None:
            # Not a bridge's, unless the socket went away between the two looks: ask once more.
            try:
                again = peer_inode(raw_there, raw_here, use_netlink=self.use_netlink)
            except (KernelLookupFailed, OSError):
                again = None
            if again == inode:
                self.counts["other peers"] += 1
            else:
                self._unknown("peer socket closed during the lookup", f"{server} from {there}")
            return
        entry = self._bridges[pid]
        self.counts["attributed to a bridge"] += 1
        self.attributed_pids.add(pid)
        if entry.routes(here):
            return
        if entry.routed.error is not None and not entry.resolved:
            self._unknown("bridge config unreadable", f"{entry.config_path}: {entry.routed.error}")
            return
        self.counts["violations"] += 1
        self._pending.append(Violation(self.current_test, server, here, there, pid, entry.config_path,
                                       entry.routed.describe()))

    def _owner(self, inode: int) -> int | None:
        pid = self._owners.get(inode)
        if pid is not None and pid in self._bridges:
            return pid
        self.counts["fd scans"] += 1
        owners: dict[int, int] = {}
        for pid, entry in list(self._bridges.items()):
            if not entry.alive():  # gone without being unregistered (exited before listening)
                del self._bridges[pid]
                continue
            try:
                names = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for name in names:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{name}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owners[int(target[8:-1])] = pid
        self._owners = owners
        return owners.get(inode)

    def _unknown(self, reason: str, detail: str) -> None:
        self.counts["unknown"] += 1
        self.unknown_reasons[reason] += 1
        if len(self.unknown_examples) < UNKNOWN_EXAMPLES:
            self.unknown_examples.append(f"{reason}: {detail} [during {self.current_test or 'no test'}]")

    # results -----------------------------------------------------------------------------------------------
    def take_violations(self, *, failing: bool = False) -> list[Violation]:
        """The violations recorded since the last call (each is reported once). `failing`: they fail a
        test (conftest); otherwise the test that provoked them asserts them (test_tripwire.py)."""
        with self._lock:
            found, self._pending = self._pending, []
            self.counts["violations failing a test" if failing else "violations asserted by a test"] += len(found)
        return found

    def failure_message(self, *, failing: bool = False) -> str | None:
        """What fails the current test (conftest's autouse fixture): the violations since the last call."""
        found = self.take_violations(failing=failing)
        if not found:
            return None
        return "the bridge opened connections its config does not route:\n" + "\n".join(f"  {v}" for v in found)

    def summary(self) -> str:
        c = self.counts
        line = (f"unrouted-dial tripwire: {c['accepted']} accepted connections checked, "
                f"{c['attributed to a bridge']} attributed to {len(self.attributed_pids)} bridge processes "
                f"({c['bridges registered']} registrations), {c['other peers']} from other processes, "
                f"{c['no bridge running']} while no bridge ran, {c['unknown']} unknown, "
                f"{c['violations']} violations ({c['violations failing a test']} failing a test, "
                f"{c['violations asserted by a test']} provoked and asserted by the tripwire's own tests), "
                f"{c['fd scans']} fd scans (lookup: {'sock_diag' if self.use_netlink else '/proc/net/tcp'})")
        if self.unknown_reasons:
            line += "\n  unknown: " + "; ".join(f"{n} × {r}" for r, n in self.unknown_reasons.most_common())
            line += "".join(f"\n    {example}" for example in self.unknown_examples)
        return line


def _netlink_works() -> bool:
    """sock_diag answers for a socket of our own (kernels without inet_diag do not)."""
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            with socket.create_connection(listener.getsockname(), timeout=2) as client:
                server, _ = listener.accept()
                with server:
                    want = os.fstat(client.fileno()).st_ino
                    return _diag_inode(socket.AF_INET, client.getsockname(), client.getpeername()) == want
    except (OSError, KernelLookupFailed):
        return False


TRIPWIRE = Tripwire(use_netlink=_netlink_works())
