"""The http-proxy test peers themselves, no bridge: the keep-alive HTTPS gateway records what it is sent and counts
connections, and real clients (curl, urllib, requests, Java) pointed at a recording fake proxy send what the proxy
tests assume: `CONNECT <name>:443` without resolving the name, absolute-form for http://, one connection for
two URLs."""

from __future__ import annotations

import hashlib
import socket
import ssl
import urllib.request

import pytest

from support.certs import GATEWAY_NAME, MERCHANT_CN
from support.legacy import SANDBOX, java_available
from support.proxy import (ConnectRelay, RecordingProxy, SockReader, curl, java_proxy_client, read_response,
                           request_bytes)


def gateway_client(pki, gw) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki.ca))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    raw = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=GATEWAY_NAME)


class Addr:
    """Something with `.listen` (what the proxy helpers take) for the recording proxy."""

    def __init__(self, port):
        self.listen = ("127.0.0.1", port)


def test_gateway_keeps_one_tls_connection_for_several_requests_and_records_them(pki, http_gateway):
    gw = http_gateway("gw")
    body = b"x" * 70000
    with gateway_client(pki, gw) as s:
        reader = SockReader(s)
        s.sendall(request_bytes("GET", "/first?q=1", [("Host", SANDBOX)]))
        first = read_response(reader)
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:1000], body[1000:])) + b"0\r\n\r\n"
        s.sendall(request_bytes("POST", "/echo", [("Host", SANDBOX), ("Transfer-Encoding", "chunked")], chunked))
        echoed = read_response(reader)
        s.sendall(request_bytes("GET", "/x/chunked", [("Host", SANDBOX)]))
        pieces = read_response(reader)
    assert first.status == 200 and first.text == "gw GET /first?q=1 conn=0 req=1\n", first
    assert first.header("x-gateway") == "gw"
    assert echoed.body == body
    assert pieces.header("transfer-encoding") == "chunked" and pieces.text == "gw GET /x/chunked conn=0 req=3\n"
    conns = gw.wait_finished(1)
    assert len(conns) == 1 and conns[0].error is None, conns
    conn = conns[0]
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN and conn.sni == GATEWAY_NAME
    assert [(r.method, r.target) for r in conn.requests] == [("GET", "/first?q=1"), ("POST", "/echo"),
                                                             ("GET", "/x/chunked")]
    assert conn.requests[1].chunked and conn.requests[1].body_digest == hashlib.sha256(body).hexdigest()
    assert conn.requests[0].header("host") == SANDBOX


def test_gateway_requires_the_client_certificate_and_counts_refused_connections(pki, http_gateway):
    gw = http_gateway("gw")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki.ca))
    with pytest.raises((ssl.SSLError, OSError)):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=10),
                             server_hostname=GATEWAY_NAME) as s:
            s.sendall(request_bytes("GET", "/", [("Host", SANDBOX)]))
            assert s.recv(1) == b""
    conns = gw.wait_finished(1)
    assert len(conns) == 1 and conns[0].requests == [], conns
    assert conns[0].handshake_error or conns[0].error, conns


def test_curl_sends_connect_with_the_unresolved_name_and_absolute_form_for_http():
    with RecordingProxy() as fake:
        result = curl(Addr(fake.port), "-o", "/dev/null", f"https://{SANDBOX}:443/path?card=1", timeout=20)
        assert result.returncode != 0  # the fake proxy answered 403
        ok = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    with RecordingProxy(ok) as plain:
        result = curl(Addr(plain.port), "-o", "/dev/null", "-o", "/dev/null", f"http://{SANDBOX}/one?q=1",
                      f"http://{SANDBOX}/two", timeout=20)
        assert result.returncode == 0, result.stderr
    connect = fake.heads[0][0].decode()
    assert connect.startswith(f"CONNECT {SANDBOX}:443 HTTP/1.1\r\n"), connect
    assert len(plain.heads) == 1, f"curl used {len(plain.heads)} connections for two URLs"
    lines = [h.decode().split("\r\n")[0] for h in plain.heads[0]]
    assert lines == [f"GET http://{SANDBOX}/one?q=1 HTTP/1.1", f"GET http://{SANDBOX}/two HTTP/1.1"], lines
    assert "proxy-connection:" in plain.heads[0][0].decode().lower(), "curl no longer sends Proxy-Connection"


def test_urllib_tunnels_with_an_http10_connect():
    with RecordingProxy() as fake:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": f"http://127.0.0.1:{fake.port}"}))
        with pytest.raises(OSError, match="403"):
            opener.open(f"https://{SANDBOX}/echo", timeout=10)
    head = fake.heads[0][0].decode()
    assert head.startswith(f"CONNECT {SANDBOX}:443 HTTP/1.0\r\n"), head
    assert "\r\nhost:" not in head.lower(), "urllib now sends Host with CONNECT; the bridge must not need it"


def test_requests_tunnels_with_the_unresolved_name():
    requests = pytest.importorskip("requests", reason="python3-requests is not installed (add it to scripts/setup)")
    with RecordingProxy() as fake, requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.exceptions.ProxyError):
            session.get(f"https://{SANDBOX}/echo", proxies={"https": f"http://127.0.0.1:{fake.port}"}, timeout=10)
    # http.client underneath: an HTTP/1.0 CONNECT without any header (no Host): the bridge must take it
    assert fake.heads[0][0].decode() == f"CONNECT {SANDBOX}:443 HTTP/1.0\r\n\r\n", fake.heads


@pytest.mark.skipif(not java_available(), reason="no java/keytool on PATH: the JSSE client cannot run")
def test_java_tunnels_with_the_unresolved_name(legacy_pki, tmp_path):
    with RecordingProxy() as fake:
        out = java_proxy_client(tmp_path / "java", ("127.0.0.1", fake.port), legacy_pki.mint_ca,
                                [f"https://{SANDBOX}/echo"])
    assert "0.error" in out and "403" in out["0.error"], out
    assert fake.heads[0][0].decode().startswith(f"CONNECT {SANDBOX}:443 HTTP/1.1\r\n"), fake.heads


def test_the_connect_relay_sends_a_well_formed_connect_then_copies_both_ways():
    """What test_tls_listener_client_simulation relies on: CRLF head with Host, then the client's bytes and the
    proxy's answers pass unchanged; a refused CONNECT closes the client and is kept with its status."""
    established = b"HTTP/1.1 200 Connection established\r\n\r\n"
    with RecordingProxy(established) as fake, ConnectRelay(("127.0.0.1", fake.port), f"{SANDBOX}:443") as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as client:
            # after the tunnel is up, the fake proxy takes the next head as a request and answers it again
            client.sendall(b"PING / HTTP/1.1\r\n\r\n")
            assert SockReader(client, 10).until(b"\r\n\r\n") == established
        relay.wait_finished(1)
        assert fake.heads[0] == [f"CONNECT {SANDBOX}:443 HTTP/1.1\r\nHost: {SANDBOX}:443\r\n\r\n".encode(),
                                 b"PING / HTTP/1.1\r\n\r\n"], fake.heads
        assert not relay.not_established()
    with RecordingProxy() as refusing, ConnectRelay(("127.0.0.1", refusing.port), f"{SANDBOX}:443") as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as client:
            assert client.recv(1) == b"", "the relay passed something on after a 403"
        relay.wait_finished(1)
        assert [c.status for c in relay.not_established()] == [403], relay.connections
