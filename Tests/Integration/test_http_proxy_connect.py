"""accept = "http-proxy", CONNECT: a routed host on an allowed port gets `HTTP/1.1 200 Connection established`, then
the merchant's TLS (legacy versions as the listener's policy allows) is terminated with a certificate minted for
that host, and the session goes on as on a tls listener: TLS 1.2+ to the gateway with the merchant's client
certificate, the gateway dialled only after the merchant's handshake. The record carries `downstream.connect`
and `downstream.http_status` = 200."""

from __future__ import annotations

import hashlib
import time

import pytest

from support.certs import MERCHANT_CN
from support.legacy import MODULE, SANDBOX, cert_names, peer_certificate
from support.proxy import (MODULE_ROUTE, SockReader, check_proxy_record, connect_tunnel, curl, legacy_curl_flags,
                           legacy_tunnel_context, open_proxy, read_response, request_bytes)
from support.servers import generated_chunks

KIB = 1024


def assert_connect_record(record: dict, *, connect: str, downstream: str, upstream: str = "gw") -> None:
    check_proxy_record(record)
    assert record["error"] is None, record
    ds = record["downstream"]
    assert (ds["connect"] or "").lower() == connect.lower(), ds
    assert ds["request_host"] is None, ds
    assert ds["http_status"] == 200, ds
    assert ds["protocol"] == downstream, ds
    assert ds["cipher"], ds
    up = record["upstream"]
    assert up["name"] == upstream and up["protocol"] in ("TLSv1.2", "TLSv1.3"), up
    assert f"CN={MERCHANT_CN}" in (up["client_cert"] or ""), up


def test_curl_tls10_via_connect_reaches_a_tls12_gateway_with_the_post_body_intact(proxy_bridge, http_gateway,
                                                                                  legacy_pki, tmp_path):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(31, 256 * KIB)))
    out = tmp_path / "out.bin"
    result = curl(b, *legacy_curl_flags(legacy_pki), "-H", "Expect:", "--data-binary", f"@{body}", "-o", str(out),
                  "-w", "%{http_code} %{http_connect}", f"https://{SANDBOX}:443/echo")
    assert result.stdout == b"200 200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes(), "the echoed body differs"
    conns = gw.wait_finished(1)
    assert len(conns) == 1, conns
    conn = conns[0]
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN, conn
    assert [(r.method, r.target) for r in conn.requests] == [("POST", "/echo")], conn.requests
    assert conn.requests[0].body_digest == hashlib.sha256(body.read_bytes()).hexdigest()
    record = b.wait_record()
    assert_connect_record(record, connect=f"{SANDBOX}:443", downstream="TLSv1")
    assert record["upstream"]["protocol"] == "TLSv1.2", record["upstream"]
    assert record["downstream"]["sni"] == SANDBOX, record["downstream"]


@pytest.mark.parametrize("http_version, tls_version", [("HTTP/1.1", "TLSv1.1"), ("HTTP/1.0", "TLSv1"),
                                                       ("HTTP/1.1", "TLSv1.3")])
def test_raw_connect_answers_200_and_presents_a_certificate_minted_for_the_host(proxy_bridge, http_gateway,
                                                                                 legacy_pki, http_version,
                                                                                 tls_version):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    # HTTP/1.0 without Host is what Python's http.client (urllib, requests) sends
    sock = open_proxy(b)
    with sock:
        sock.sendall(f"CONNECT {SANDBOX}:443 {http_version}\r\n\r\n".encode())
        head = bytearray()
        while not head.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            assert chunk, f"EOF after {bytes(head)!r}"
            head += chunk
        status_line = head.split(b"\r\n", 1)[0].decode()
        assert status_line.split(" ", 2)[:2] == ["HTTP/1.1", "200"], status_line
        assert status_line.split(" ", 2)[2].lower() == "connection established", status_line
        with legacy_tunnel_context(legacy_pki, tls_version).wrap_socket(sock, server_hostname=SANDBOX) as tls:
            assert tls.version() == tls_version
            cns, dns = cert_names(peer_certificate(tls))  # verified against the Mint CA and the name
            assert SANDBOX in dns, dns
            tls.sendall(request_bytes("GET", "/inside", [("Host", SANDBOX), ("Connection", "close")]))
            resp = read_response(SockReader(tls))
    assert resp.status == 200 and resp.text == "gw GET /inside conn=0 req=1\n", resp
    assert_connect_record(b.wait_record(), connect=f"{SANDBOX}:443", downstream=tls_version)


def test_connect_to_a_route_with_an_explicit_port(proxy_bridge, http_gateway, legacy_pki):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    tls, resp = connect_tunnel(b, MODULE_ROUTE, ctx=legacy_tunnel_context(legacy_pki))
    with tls:
        assert MODULE in cert_names(peer_certificate(tls))[1]
        tls.sendall(request_bytes("GET", "/m", [("Host", MODULE_ROUTE), ("Connection", "close")]))
        answer = read_response(SockReader(tls))
    assert answer.header("x-gateway") == "gw2", answer
    assert len(gw2.wait_finished(1)) == 1
    gw.assert_not_dialled()
    assert_connect_record(b.wait_record(), connect=MODULE_ROUTE, downstream="TLSv1", upstream="gw2")


def test_connect_host_matches_the_route_case_insensitively(proxy_bridge, http_gateway, legacy_pki):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    tls, _ = connect_tunnel(b, "Sandbox.PAYGENT.test:443", ctx=legacy_tunnel_context(legacy_pki),
                            sni=SANDBOX)
    with tls:
        tls.sendall(request_bytes("GET", "/", [("Host", SANDBOX), ("Connection", "close")]))
        assert read_response(SockReader(tls)).status == 200
    assert_connect_record(b.wait_record(), connect=f"{SANDBOX}:443", downstream="TLSv1")


def test_gateway_is_dialled_only_after_the_merchants_handshake_in_the_tunnel(proxy_bridge, http_gateway,
                                                                            legacy_pki):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    sock = open_proxy(b)
    with sock:
        sock.sendall(request_bytes("CONNECT", f"{SANDBOX}:443", [("Host", f"{SANDBOX}:443")]))
        reader = SockReader(sock)
        assert read_response(reader, method="CONNECT").status == 200
        time.sleep(0.7)  # 200 received, no ClientHello yet
        assert gw.connections == [], "the bridge dialled the gateway before the merchant's TLS handshake"
        with legacy_tunnel_context(legacy_pki).wrap_socket(sock, server_hostname=SANDBOX) as tls:
            tls.sendall(request_bytes("GET", "/", [("Host", SANDBOX), ("Connection", "close")]))
            assert read_response(SockReader(tls)).status == 200
    assert len(gw.wait_finished(1)) == 1


def test_tunnel_handshake_below_the_listeners_min_version_is_refused_without_dialling(proxy_bridge, http_gateway,
                                                                                     legacy_pki):
    gw = http_gateway("gw")
    b = proxy_bridge(gw, min_version="TLS1.2")
    sock = open_proxy(b)
    with sock:
        sock.sendall(request_bytes("CONNECT", f"{SANDBOX}:443", [("Host", f"{SANDBOX}:443")]))
        assert read_response(SockReader(sock), method="CONNECT").status == 200
        with pytest.raises(OSError):
            with legacy_tunnel_context(legacy_pki, "TLSv1").wrap_socket(sock, server_hostname=SANDBOX) as tls:
                tls.sendall(b"GET / HTTP/1.1\r\n\r\n")
                assert tls.recv(1) == b""
    gw.assert_not_dialled()
    record = b.wait_record()
    check_proxy_record(record)
    assert record["downstream"]["connect"] == f"{SANDBOX}:443", record
    assert record["phase"] == "downstream_handshake" and record["close"] in ("downstream_error", "refused"), record
    assert record["upstream"]["protocol"] is None, record


def test_tunnel_carries_several_requests_over_one_gateway_connection(proxy_bridge, http_gateway, legacy_pki):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    tls, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki))
    bodies = []
    with tls:
        reader = SockReader(tls)
        for i in range(5):
            payload = bytes([65 + i]) * (1000 * (i + 1))
            last = [("Connection", "close")] if i == 4 else []  # the gateway ends the session
            tls.sendall(request_bytes("POST", "/echo", [("Host", SANDBOX), ("Content-Length", str(len(payload)))]
                                      + last, payload))
            bodies.append(read_response(reader).body == payload)
    assert bodies == [True] * 5
    conns = gw.wait_finished(1)
    assert len(conns) == 1 and len(conns[0].requests) == 5, conns
    assert_connect_record(b.wait_record(), connect=f"{SANDBOX}:443", downstream="TLSv1")
