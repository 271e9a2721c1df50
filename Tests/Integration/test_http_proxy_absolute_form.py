"""accept = "http-proxy", absolute-form `METHOD http://host[:port]/path`: forwarded over TLS 1.2+ (merchant client
certificate) to the routed gateway in origin form, `Host` from the URL, hop-by-hop headers removed, bodies intact
(Content-Length and chunked). Keep-alive: requests for one host share one gateway connection; a request for another
routed host goes over a new gateway connection (a new record) once the previous responses are complete, and the
responses are never mixed. The record has `downstream.request_host` and `http_status` null."""

from __future__ import annotations

import hashlib
import time

import pytest

from support.bridge import wait_closed
from support.certs import MERCHANT_CN
from support.legacy import MODULE, SANDBOX
from support.proxy import (HOP_BY_HOP, MODULE_ROUTE, SockReader, basic, check_proxy_record, curl, open_proxy,
                           read_response, request_bytes)
from support.servers import generated_chunks

MIB = 1024 * 1024


def assert_forwarded_record(record: dict, *, host: str, upstream: str = "gw") -> None:
    check_proxy_record(record)
    assert record["error"] is None, record
    ds = record["downstream"]
    assert (ds["request_host"] or "").lower() == host.lower(), ds
    assert ds["connect"] is None, ds
    assert ds["http_status"] is None, f"the gateway answered, yet http_status is set: {ds}"
    up = record["upstream"]
    assert up["name"] == upstream and up["protocol"] in ("TLSv1.2", "TLSv1.3"), up
    assert f"CN={MERCHANT_CN}" in (up["client_cert"] or ""), up


def test_curl_plain_request_is_upgraded_to_tls_and_sent_in_origin_form(proxy_bridge, http_gateway, tmp_path):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    out = tmp_path / "out.txt"
    result = curl(b, "-o", str(out), "-w", "%{http_code}", f"http://{SANDBOX}/path/to?q=1&x=%20y")
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_text() == "gw GET /path/to?q=1&x=%20y conn=0 req=1\n"
    conn = gw.wait_finished(1)[0]
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN, conn
    (req,) = conn.requests
    assert (req.method, req.target, req.version) == ("GET", "/path/to?q=1&x=%20y", "HTTP/1.1"), req
    assert req.header("host") == SANDBOX, req.headers
    assert not [n for n in req.names() if n.startswith("proxy-")], f"Proxy-* headers reached the gateway: {req.headers}"
    assert req.header("user-agent").startswith("curl/"), req.headers
    assert_forwarded_record(b.wait_record(), host=SANDBOX)


def test_curl_two_urls_share_one_client_connection_and_one_gateway_connection(proxy_bridge, http_gateway, tmp_path):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    one, two = tmp_path / "one", tmp_path / "two"
    result = curl(b, "-o", str(one), "-o", str(two), "-w", "%{http_code}:%{num_connects} ",
                  f"http://{SANDBOX}/one?q=1", f"http://{SANDBOX}/two")
    assert result.stdout.split() == [b"200:1", b"200:0"], (result.stdout, result.stderr)
    assert one.read_text() == "gw GET /one?q=1 conn=0 req=1\n"
    assert two.read_text() == "gw GET /two conn=0 req=2\n"
    conns = gw.wait_finished(1)
    assert len(conns) == 1, f"the gateway saw {len(conns)} TLS connections for two keep-alive requests"
    assert [r.target for r in conns[0].requests] == ["/one?q=1", "/two"]
    assert_forwarded_record(b.wait_record(), host=SANDBOX)


def test_curl_chunked_request_body_arrives_intact(proxy_bridge, http_gateway, tmp_path):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(41, 300 * 1024 + 7)))
    out = tmp_path / "out.bin"
    result = curl(b, "-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary", f"@{body}",
                  "-o", str(out), "-w", "%{http_code}", f"http://{SANDBOX}/echo")
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes()
    (req,) = gw.wait_finished(1)[0].requests
    assert req.body_digest == hashlib.sha256(body.read_bytes()).hexdigest() and req.body_length == body.stat().st_size
    assert_forwarded_record(b.wait_record(), host=SANDBOX)


def test_curl_content_length_body_of_1_mib_arrives_intact(proxy_bridge, http_gateway, tmp_path):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(42, MIB)))
    out = tmp_path / "out.bin"
    result = curl(b, "-H", "Expect:", "--data-binary", f"@{body}", "-o", str(out), "-w", "%{http_code}",
                  f"http://{SANDBOX}/echo")
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes()
    (req,) = gw.wait_finished(1)[0].requests
    assert not req.chunked and req.header("content-length") == str(MIB), req.headers
    assert req.body_digest == hashlib.sha256(body.read_bytes()).hexdigest()


def test_hop_by_hop_headers_are_removed_and_host_comes_from_the_url(proxy_bridge, http_gateway):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    payload = b"amount=100&currency=JPY"
    head = [("Host", "evil.example"), ("Proxy-Connection", "keep-alive"), ("Proxy-Authorization", basic("a", "b")),
            ("Connection", "keep-alive, X-Hop-Secret"), ("Keep-Alive", "timeout=5"), ("X-Hop-Secret", "1"),
            ("X-End-To-End", "kept"), ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", str(len(payload)))]
    with open_proxy(b) as sock:
        sock.sendall(request_bytes("POST", f"http://{SANDBOX}/echo?z=9", head, payload))
        resp = read_response(SockReader(sock))
    assert resp.status == 200 and resp.body == payload, resp
    (req,) = gw.wait_finished(1)[0].requests
    assert req.target == "/echo?z=9", req
    assert req.header("host") == SANDBOX, f"Host must come from the request URL: {req.headers}"
    names = req.names()
    for hop in HOP_BY_HOP + ("x-hop-secret",):
        assert hop not in names, f"{hop} reached the gateway: {req.headers}"
    assert "x-hop-secret" not in (req.header("connection") or "").lower(), req.headers
    assert req.header("x-end-to-end") == "kept" and req.header("content-type"), req.headers
    assert req.body_digest == hashlib.sha256(payload).hexdigest()


def test_default_ports_80_and_443_both_reach_a_route_without_a_port(proxy_bridge, http_gateway):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    for port in (80, 443):
        with open_proxy(b) as sock:
            sock.sendall(request_bytes("GET", f"http://{SANDBOX}:{port}/p{port}", [("Host", f"{SANDBOX}:{port}")]))
            resp = read_response(SockReader(sock))
        assert resp.status == 200 and resp.header("x-gateway") == "gw", resp
    assert [r.target for r in gw.requests()] == ["/p80", "/p443"]
    records = b.wait_records(2)
    for record in records:
        check_proxy_record(record)
        assert (record["downstream"]["request_host"] or "").lower().startswith(SANDBOX), record


def test_route_with_an_explicit_port_in_absolute_form(proxy_bridge, http_gateway):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    with open_proxy(b) as sock:
        sock.sendall(request_bytes("GET", f"http://{MODULE_ROUTE}/m?a=1", [("Host", MODULE_ROUTE)]))
        resp = read_response(SockReader(sock))
    assert resp.status == 200 and resp.header("x-gateway") == "gw2", resp
    (req,) = gw2.wait_finished(1)[0].requests
    assert req.target == "/m?a=1" and (req.header("host") or "").lower().startswith(MODULE), req
    gw.assert_not_dialled()
    assert_forwarded_record(b.wait_record(), host=MODULE_ROUTE, upstream="gw2")


def test_another_host_on_the_same_client_connection_gets_a_new_gateway_connection(proxy_bridge, http_gateway):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    with open_proxy(b) as sock:
        reader = SockReader(sock)
        answers = []
        for url, host in ((f"http://{SANDBOX}/a", SANDBOX), (f"http://{SANDBOX}/b", SANDBOX),
                          (f"http://{MODULE_ROUTE}/c", MODULE_ROUTE), (f"http://{SANDBOX}/d", SANDBOX)):
            sock.sendall(request_bytes("GET", url, [("Host", host)]))
            resp = read_response(reader)
            answers.append((resp.status, resp.header("x-gateway"), resp.text.split(" conn=")[0]))
    assert answers == [(200, "gw", "gw GET /a"), (200, "gw", "gw GET /b"), (200, "gw2", "gw2 GET /c"),
                       (200, "gw", "gw GET /d")], answers
    gw_conns = gw.wait_finished(2)
    assert [[r.target for r in c.requests] for c in gw_conns] == [["/a", "/b"], ["/d"]], gw_conns
    assert [[r.target for r in c.requests] for c in gw2.wait_finished(1)] == [["/c"]]
    records = b.wait_records(3)
    hosts = [(r["downstream"]["request_host"] or "").lower() for r in records]
    assert sorted(hosts) == sorted([SANDBOX, MODULE_ROUTE, SANDBOX]), records
    for record in records:
        assert_forwarded_record(record, host=record["downstream"]["request_host"],
                                upstream="gw2" if record["downstream"]["request_host"].lower() == MODULE_ROUTE
                                else "gw")
    assert len({r["session"] for r in records}) == 3, "each gateway connection is its own session"


def test_pipelined_requests_for_two_hosts_come_back_in_order_and_unmixed(proxy_bridge, http_gateway):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    pipeline = (request_bytes("GET", f"http://{SANDBOX}/first/slow", [("Host", SANDBOX)])
                + request_bytes("GET", f"http://{SANDBOX}/second/chunked", [("Host", SANDBOX)])
                + request_bytes("GET", f"http://{MODULE_ROUTE}/third", [("Host", MODULE_ROUTE)]))
    with open_proxy(b) as sock:
        sock.sendall(pipeline)
        reader = SockReader(sock)
        texts = [read_response(reader).text for _ in range(3)]
    assert texts == ["gw GET /first/slow conn=0 req=1\n", "gw GET /second/chunked conn=0 req=2\n",
                     "gw2 GET /third conn=0 req=1\n"], texts
    assert b.wait_records(2)


def test_chunked_gateway_response_is_relayed_and_keep_alive_continues(proxy_bridge, http_gateway):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    with open_proxy(b) as sock:
        reader = SockReader(sock)
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/x/chunked", [("Host", SANDBOX)]))
        first = read_response(reader)
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/y", [("Host", SANDBOX)]))
        second = read_response(reader)
    assert first.text == "gw GET /x/chunked conn=0 req=1\n", first
    assert second.text == "gw GET /y conn=0 req=2\n", second
    assert len(gw.wait_finished(1)) == 1


@pytest.mark.parametrize("version, headers", [("HTTP/1.1", [("Connection", "close")]), ("HTTP/1.0", [])],
                         ids=["http11-connection-close", "http10-without-keep-alive"])
def test_client_that_asks_for_close_gets_eof_after_the_response(proxy_bridge, http_gateway, version, headers):
    """RFC 9112 9.6: after `Connection: close` (or an HTTP/1.0 request without keep-alive) the proxy closes once the
    response is sent. Old merchant code (PHP fsockopen, HTTP/1.0) reads the answer until EOF."""
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    with open_proxy(b) as sock:
        start = time.monotonic()
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/bye", [("Host", SANDBOX)] + headers, version=version))
        data, waited = wait_closed(sock, timeout=5)
    assert data.startswith(b"HTTP/1.") and data.endswith(b"gw GET /bye conn=0 req=1\n"), data
    assert time.monotonic() - start < 3, f"closed only after {waited:.1f} s"
    assert [r.target for r in gw.requests()] == ["/bye"]
    assert_forwarded_record(b.wait_record(), host=SANDBOX)
