"""The outbound-proxy test peers themselves, without the bridge: Squid tunnels curl to the gateway (and only
there, and only with the right credentials when it asks for them), and the hand-written misbehaving proxy does
in each mode what the failure tests rely on."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from support.bridge import free_port
from support.certs import MERCHANT_CN
from support.legacy import SANDBOX
from support.outbound_proxy import (OK_200, PROXY_PASSWORD, PROXY_USER, HostileProxy, Squid, basic_authorization,
                                    gateway_context, generate_via_pki)
from support.proxy import HttpGateway, SockReader, parse_head, read_response, request_bytes, run


@pytest.fixture(scope="module")
def via_gateway(pki, tmp_path_factory):
    vpki = generate_via_pki(tmp_path_factory.mktemp("via-pki"), pki)
    server = HttpGateway(gateway_context(pki, vpki), name="gw").start()
    yield server, vpki
    server.stop()


def curl_via(squid: Squid, pki, vpki, url: str, *extra: str):
    result = run(["curl", "-sS", "--max-time", "10", "-x", f"http://{squid.address}", *extra, "--cacert", str(vpki.ca),
                  "--cert", str(pki.client_cert), "--key", str(pki.client_key), "-o", "/dev/null",
                  "-w", "%{http_code} %{http_connect}", url], timeout=20)
    return result.stdout.decode()


def test_squid_with_basic_auth_tunnels_only_to_the_gateway_and_only_with_credentials(pki, via_gateway, tmp_path):
    gw, vpki = via_gateway
    before = len(gw.connections)
    with Squid([gw.port], users={PROXY_USER: PROXY_PASSWORD}, keep=tmp_path / "squid") as squid:
        url = f"https://{SANDBOX}:{gw.port}/"
        assert curl_via(squid, pki, vpki, url) == "000 407"
        assert curl_via(squid, pki, vpki, url, "-U", f"{PROXY_USER}:wrong") == "000 407"
        assert curl_via(squid, pki, vpki, url, "-U", f"{PROXY_USER}:{PROXY_PASSWORD}") == "200 200"
        other = free_port()
        assert curl_via(squid, pki, vpki, f"https://{SANDBOX}:{other}/", "-U", f"{PROXY_USER}:{PROXY_PASSWORD}") \
            == "000 403"
        # the 407 names the scheme and realm a client must answer
        with socket.create_connection(("127.0.0.1", squid.port), timeout=10) as s:
            s.sendall(request_bytes("CONNECT", f"{SANDBOX}:{gw.port}", [("Host", f"{SANDBOX}:{gw.port}")]))
            resp = read_response(SockReader(s, 10))
        assert resp.status == 407 and resp.header("proxy-authenticate") == 'Basic realm="tls-bridge-test"', resp
        tunnels = squid.tunnels_to(f"{SANDBOX}:{gw.port}")
        assert len(tunnels) == 1 and tunnels[0].user == PROXY_USER, squid.access()
        assert tunnels[0].hierarchy == "HIER_DIRECT/127.0.0.1", tunnels
    conns = gw.wait_connections(before + 1)[before:]
    assert len(conns) == 1 and conns[0].sni == SANDBOX and conns[0].client_cn == MERCHANT_CN, conns
    assert squid.proc.returncode is not None, "squid still running after stop"
    assert not squid.dir.exists() and (tmp_path / "squid" / "access.log").exists()


def test_squid_without_auth_tunnels_and_stops_within_its_bound(pki, via_gateway, tmp_path):
    gw, vpki = via_gateway
    squid = Squid([gw.port], keep=tmp_path / "squid").start()
    try:
        assert curl_via(squid, pki, vpki, f"https://{SANDBOX}:{gw.port}/") == "200 200"
        (tunnel,) = squid.tunnels_to(f"{SANDBOX}:{gw.port}")
        assert tunnel.user == "-", tunnel
        # only CONNECT: a plain GET through it is denied
        assert run(["curl", "-sS", "--max-time", "10", "-x", f"http://{squid.address}", "-o", "/dev/null",
                    "-w", "%{http_code}", f"http://{SANDBOX}:{gw.port}/"], timeout=20).stdout == b"403"
    finally:
        started = time.monotonic()
        squid.stop()
        assert time.monotonic() - started < 10


def raw_connect(proxy: HostileProxy, *, headers=(), timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.sendall(request_bytes("CONNECT", f"{SANDBOX}:443", [("Host", f"{SANDBOX}:443"), *headers]))
    out = bytearray()
    deadline = time.monotonic() + timeout
    sock.settimeout(0.3)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            if out:
                break
            continue
        if not data:
            break
        out += data
    return sock, bytes(out)


@pytest.mark.parametrize("mode, status", [("refuse", 403), ("want_auth", 407), ("reject_credentials", 407),
                                          ("bad_gateway", 502), ("close_after_200", 200)])
def test_hostile_proxy_answers_by_mode(mode, status):
    with HostileProxy(mode) as proxy:
        sock, data = raw_connect(proxy, headers=[("Proxy-Authorization", basic_authorization())])
        sock.close()
        _, got, _, headers = parse_head(data.split(b"\r\n\r\n", 1)[0])
        assert got == status, data
        if status == 407:
            assert ("Proxy-Authenticate", 'Basic realm="x"') in headers, headers
        assert proxy.wait_connections(1)[0].request_line == f"CONNECT {SANDBOX}:443 HTTP/1.1"


@pytest.mark.parametrize("mode", ["garbage", "overlong", "silent", "close"])
def test_hostile_proxy_misbehaves_by_mode(mode):
    with HostileProxy(mode, lifetime=3) as proxy:
        sock, data = raw_connect(proxy, timeout=1 if mode == "silent" else 3)
        sock.close()
    if mode == "garbage":
        assert data and not data.startswith(b"HTTP/"), data[:50]
    elif mode == "overlong":
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and len(data) > 100 * 1024, len(data)
        assert b"\r\n\r\n" not in data[:100 * 1024], "the head ended within 100 KiB"
    else:
        assert data == b"", data


def test_hostile_proxy_records_and_relays_tls_to_its_target_and_can_cut_the_tunnel(pki, via_gateway):
    gw, vpki = via_gateway
    for mode in ("record", "close_mid_tunnel"):
        with HostileProxy(mode, target=("127.0.0.1", gw.port)) as proxy:
            sock, data = raw_connect(proxy, headers=[("X-Probe", "1")])
            assert data == OK_200, data
            ctx = ssl.create_default_context(cafile=str(vpki.ca))
            ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
            sock.settimeout(10)
            with ctx.wrap_socket(sock, server_hostname=SANDBOX) as tls:
                tls.sendall(request_bytes("GET", "/r", [("Host", SANDBOX)]))
                assert read_response(SockReader(tls, 10)).status == 200
                if mode == "close_mid_tunnel":
                    proxy.cut.set()
                    tls.settimeout(5)
                    try:
                        assert tls.recv(10) == b""
                    except (ssl.SSLError, ConnectionResetError):
                        pass  # an EOF without close_notify: what the bridge will see too
            (conn,) = proxy.wait_connections(1)
            conn.finished.wait(5)
            assert conn.header("x-probe") == ["1"] and conn.relayed_down > 0 and conn.relayed_up > 0, conn
