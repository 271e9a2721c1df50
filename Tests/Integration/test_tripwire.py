"""The unrouted-dial tripwire (support/tripwire.py) can fire: a connection from a registered process to an
address its config does not route is found from the server's side and named (pid, config, destination);
routed connections, other clients, a reload to another upstream and names answered by the DNS stub pass;
a lookup that cannot decide is counted as unknown, never as a violation.

A correct bridge only dials what its config routes, so the tests that provoke a violation tell the tripwire
a different config for a running bridge (a copy routing only a closed port) and let the bridge do what its
real config says: the kernel socket, the pid, the config and the destination are all real.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import struct
import time
from pathlib import Path

import pytest

from support.bridge import recv_exact, to_toml
from support.certs import GATEWAY_NAME
from support.servers import closed_port
from support.tripwire import TRIPWIRE, RoutedSet, Tripwire, peer_inode


def echo_once(b, payload: bytes = b"ping") -> bytes:
    with b.connect() as s:
        s.sendall(b"ECHO %d\n" % len(payload) + payload)
        return recv_exact(s, len(payload))


def decoy_config(b, tmp_path) -> Path:
    """A copy of the bridge's config whose only upstream is a closed port."""
    config = copy.deepcopy(b.config)
    config["upstream"][0]["address"] = f"127.0.0.1:{closed_port()}"
    path = tmp_path / "decoy.toml"
    path.write_text(to_toml(config))
    return path


# --- a real bridge ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("threaded", [False, True], ids=["asyncio-server", "threaded-server"])
def test_a_bridge_connection_to_an_address_its_config_does_not_route_is_named_and_fails_the_test(
        upstream, bridge, tmp_path, threaded):
    server = upstream(threaded=threaded, name="unrouted-gw")
    b = bridge(server.address)
    decoy = decoy_config(b, tmp_path)
    TRIPWIRE.register(b.pid, decoy)
    attributed = TRIPWIRE.counts["attributed to a bridge"]

    assert echo_once(b) == b"ping"
    found = TRIPWIRE.take_violations()
    assert [(v.pid, v.config_path, v.destination, v.server) for v in found] == \
        [(b.pid, decoy, ("127.0.0.1", server.port), "unrouted-gw")], found
    assert TRIPWIRE.counts["attributed to a bridge"] == attributed + 1
    text = str(found[0])
    assert f"pid {b.pid}" in text and str(decoy) in text and server.address in text, text
    assert "test_tripwire.py::" in text, "the violation names the test it happened in"

    # What the autouse fixture fails the test with; taking it clears it, so this test itself passes.
    assert echo_once(b) == b"ping"
    message = TRIPWIRE.failure_message()
    assert message is not None and f"pid {b.pid}" in message and server.address in message, message
    assert TRIPWIRE.failure_message() is None


def test_connections_to_the_routed_upstream_are_attributed_and_allowed(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    attributed = TRIPWIRE.counts["attributed to a bridge"]
    for _ in range(3):
        assert echo_once(b) == b"ping"
    assert TRIPWIRE.counts["attributed to a bridge"] == attributed + 3
    assert TRIPWIRE.take_violations() == []


def test_a_client_that_is_not_a_bridge_is_not_attributed(upstream, bridge, tmp_path):
    server = upstream()
    b = bridge(server.address)
    TRIPWIRE.register(b.pid, decoy_config(b, tmp_path))  # attributing this client to b would be a violation
    other = TRIPWIRE.counts["other peers"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        assert len(server.wait_connections(1)) == 1
    assert TRIPWIRE.counts["other peers"] == other + 1
    assert TRIPWIRE.take_violations() == []


def test_a_gateway_name_is_resolved_through_the_bridges_dns_stub(upstream, bridge, dns_stub):
    server = upstream()
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"})
    b = bridge(f"{GATEWAY_NAME}:{server.port}", upstream={"server_name": None},
               dns={"nameservers": [stub.address], "timeout": "2s"})
    attributed = TRIPWIRE.counts["attributed to a bridge"]
    assert echo_once(b) == b"ping"
    assert TRIPWIRE.counts["attributed to a bridge"] == attributed + 1
    assert TRIPWIRE.take_violations() == []


def test_a_reload_that_moves_the_upstream_is_followed(upstream, bridge):
    first, second = upstream(name="first"), upstream(name="second")
    b = bridge(first.address)
    assert echo_once(b) == b"ping"
    b.config["upstream"][0]["address"] = second.address
    b.config_path.write_text(to_toml(b.config))
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not second.connections:
        assert time.monotonic() < deadline, f"the reload never reached the second upstream:\n{b.stderr()[-2000:]}"
        assert echo_once(b) == b"ping"
        time.sleep(0.05)
    assert TRIPWIRE.take_violations() == []


# --- the mechanism, with this test process standing in for a bridge ----------------------------------------------

def config_routing(tmp_path, *addresses: str, nameservers: tuple[str, ...] = (), backends: tuple[str, ...] = ()):
    lines = []
    if nameservers:
        lines += ["[dns]", "nameservers = [" + ", ".join(f'"{n}"' for n in nameservers) + "]", ""]
    for i, address in enumerate(addresses):
        lines += ["[[upstream]]", f'name = "u{i}"', f'address = "{address}"', ""]
    for i, address in enumerate(backends):
        lines += ["[[backend]]", f'name = "b{i}"', f'address = "{address}"', ""]
    path = tmp_path / f"routes{len(list(tmp_path.glob('routes*')))}.toml"
    path.write_text("\n".join(lines))
    return path


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(5)
    return sock


def test_the_routed_set_reads_upstreams_and_backends_and_resolves_names_like_the_bridge(tmp_path, dns_stub):
    stub = dns_stub({"gw.test": ["127.0.0.3", "127.0.0.1"]})
    path = config_routing(tmp_path, "gw.test:443", "[::1]:8443", "nx.test:443", "localhost:9000",
                          nameservers=(stub.address,), backends=("127.0.0.1:8080",))
    assert RoutedSet.read(path).resolve() == {("127.0.0.3", 443), ("127.0.0.1", 443), ("::1", 8443),
                                              ("127.0.0.1", 8080), ("127.0.0.1", 9000), ("::1", 9000)}
    # Without [dns] the system resolver answers (localhost from /etc/hosts; the stub's names are unknown).
    system = RoutedSet.read(config_routing(tmp_path, "localhost:9000", "127.0.0.1:1"))
    assert {("127.0.0.1", 9000), ("127.0.0.1", 1)} <= system.resolve()
    unreadable = RoutedSet.read(tmp_path / "missing.toml")
    assert unreadable.error is not None and unreadable.resolve() == set()


def test_both_kernel_lookups_find_the_peer_socket_and_nothing_for_a_closed_one():
    with listener() as server, socket.create_connection(server.getsockname(), timeout=5) as client:
        accepted, _ = server.accept()
        with accepted:
            want = os.fstat(client.fileno()).st_ino
            pair = (client.getsockname(), client.getpeername())
            assert peer_inode(*pair, use_netlink=False) == want
            if TRIPWIRE.use_netlink:
                assert peer_inode(*pair, use_netlink=True) == want
            nobody = (("127.0.0.1", closed_port()), client.getpeername())
            assert peer_inode(*nobody, use_netlink=False) is None
            if TRIPWIRE.use_netlink:
                assert peer_inode(*nobody, use_netlink=True) is None


@pytest.mark.parametrize("use_netlink", [True, False], ids=["sock_diag", "proc-net-tcp"])
def test_a_registered_process_is_checked_and_an_undecidable_lookup_is_unknown(tmp_path, use_netlink):
    if use_netlink and not TRIPWIRE.use_netlink:
        pytest.skip("sock_diag is not available on this kernel")
    routed, unrouted = listener(), listener()
    with routed, unrouted:
        tripwire = Tripwire(use_netlink=use_netlink)
        config = config_routing(tmp_path, f"127.0.0.1:{routed.getsockname()[1]}")
        tripwire.register(os.getpid(), config)  # this process plays the bridge
        tripwire.current_test = "unit"
        for server, name in ((routed, "routed"), (unrouted, "unrouted")):
            with socket.create_connection(server.getsockname(), timeout=5) as client:
                accepted, _ = server.accept()
                with accepted:
                    tripwire.on_accept(accepted, name)
        assert tripwire.counts["attributed to a bridge"] == 2
        found = tripwire.take_violations()
        assert [(v.pid, v.config_path, v.server, v.destination) for v in found] == \
            [(os.getpid(), config, "unrouted", ("127.0.0.1", unrouted.getsockname()[1]))], found

        # The client resets before the server looks: unknown, not a violation, not an exception.
        client = socket.create_connection(unrouted.getsockname(), timeout=5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        accepted, _ = unrouted.accept()
        client.close()
        with accepted:
            tripwire.on_accept(accepted, "unrouted")
        broken = socket.socket()
        broken.close()
        tripwire.on_accept(broken, "closed socket")
        assert tripwire.counts["unknown"] == 2, tripwire.summary()
        assert tripwire.take_violations() == []
        assert "2 unknown" in tripwire.summary() and "1 violations" in tripwire.summary()

        tripwire.unregister(os.getpid())
        with socket.create_connection(unrouted.getsockname(), timeout=5):
            accepted, _ = unrouted.accept()
            with accepted:
                tripwire.on_accept(accepted, "unrouted")
        assert tripwire.counts["no bridge running"] == 1 and tripwire.take_violations() == []
