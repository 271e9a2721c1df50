"""`[[upstream]] via` (issue #16) when the proxy misbehaves: every failure of the CONNECT exchange is a record in
phase `tunnel` whose error names the outbound proxy and what it did; reaching the proxy fails in `resolve` or
`connect`; a proxy that drops the tunnel fails the gateway handshake (`handshake`) or the open session. A plain
merchant just sees its connection closed; an http-proxy merchant gets the bridge's own 502 (504 when the proxy
never answers) saying it was the outbound proxy. No case crashes the bridge (the `bridge` fixture checks)."""

from __future__ import annotations

import time

import pytest

from support.bridge import wait_closed
from support.legacy import SANDBOX
from support.outbound_proxy import (PROXY_NAME, HostileProxy, assert_no_secret, assert_via_record, gateway_context,
                                    generate_via_pki, via_upstream, write_credentials)
from support.proxy import (HttpGateway, SockReader, assert_bridge_error, bridge_answer, connect_tunnel,
                           legacy_tunnel_context, proxy_listener, read_response, request_bytes)
from support.servers import closed_port

TARGET = f"{SANDBOX}:443"
ROUTES = {SANDBOX: "gw"}


@pytest.fixture(scope="module")
def via_pki(pki, tmp_path_factory):
    return generate_via_pki(tmp_path_factory.mktemp("via-pki"), pki)


@pytest.fixture(scope="module")
def gw(pki, via_pki):
    server = HttpGateway(gateway_context(pki, via_pki), name="gw").start()
    yield server
    server.stop()


@pytest.fixture
def hostile():
    started: list[HostileProxy] = []

    def make(mode: str, **kwargs) -> HostileProxy:
        proxy = HostileProxy(mode, **kwargs).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def via_bridge(bridge, pki, via_pki, via: str, *, kind: str, legacy_pki=None, credentials=None, limits=None,
               dns=None, level="info"):
    listener = proxy_listener(legacy_pki, routes=ROUTES) if kind == "http-proxy" else None
    return bridge(TARGET, upstream=via_upstream(pki, via_pki, via, credentials=credentials), listener=listener,
                  limits=limits, dns=dns, level=level)


def plain_merchant_is_closed_on(b) -> None:
    with b.connect() as s:
        s.sendall(request_bytes("GET", "/pay", [("Host", SANDBOX)]))
        data, _ = wait_closed(s, 15)
    assert data == b"", f"a failed tunnel delivered {data[:200]!r}"


def http_proxy_merchant_gets(b, status: int) -> str:
    resp, closed = bridge_answer(b, request_bytes("GET", f"http://{SANDBOX}/pay?x=1", [("Host", SANDBOX)]), timeout=15)
    assert_bridge_error(resp, closed, status)
    said = f"{resp.reason} {resp.text}"
    assert "outbound proxy" in said.lower(), f"the {status} does not say it was the outbound proxy: {said!r}"
    return said


# mode, via_credentials?, limits, close, what the error says (besides naming the proxy), merchant's status
CASES = [
    ("refuse", False, None, "upstream_error", [f"refused CONNECT {TARGET}", "403 Forbidden"], 502),
    ("want_auth", False, None, "upstream_error", ['wants credentials (Basic realm="x")', "set via_credentials"], 502),
    ("reject_credentials", True, None, "upstream_error", ["rejected the credentials in via_credentials"], 502),
    ("bad_gateway", False, None, "upstream_error", ["answered CONNECT", TARGET, "with 502"], 502),
    ("garbage", False, None, "upstream_error", ["sent an answer to CONNECT", "not HTTP"], 502),
    ("overlong", False, None, "upstream_error", ["CONNECT", TARGET], 502),
    ("close", False, None, "upstream_error", ["closed the connection before answering CONNECT", TARGET], 502),
    ("silent", False, {"connect_timeout": "1s"}, "connect_timeout",
     ["did not answer CONNECT", TARGET, "within connect_timeout"], 504),
]


@pytest.mark.parametrize("kind", ["plain", "http-proxy"])
@pytest.mark.parametrize("mode, with_credentials, limits, close, needles, status", CASES, ids=[c[0] for c in CASES])
def test_a_failed_connect_exchange_is_a_tunnel_record_naming_the_proxy(bridge, pki, legacy_pki, via_pki, hostile,
                                                                      tmp_path, kind, mode, with_credentials,
                                                                      limits, close, needles, status):
    proxy = hostile(mode, lifetime=20)
    credentials = write_credentials(tmp_path / "proxy.credentials") if with_credentials else None
    b = via_bridge(bridge, pki, via_pki, f"http://{proxy.address}", kind=kind, legacy_pki=legacy_pki,
                   credentials=credentials, limits=limits)
    started = time.monotonic()
    if kind == "plain":
        plain_merchant_is_closed_on(b)
    else:
        http_proxy_merchant_gets(b, status)
    elapsed = time.monotonic() - started
    if mode == "silent":
        assert 0.8 <= elapsed <= 5.0, f"gave up after {elapsed:.2f} s with connect_timeout = 1s"
    record = b.wait_record()
    assert_via_record(record, via=proxy.address, proxy_address=proxy.address)
    assert (record["phase"], record["close"]) == ("tunnel", close), record
    assert record["upstream"]["protocol"] is None, record
    error = record["error"] or ""
    assert f"outbound proxy {proxy.address}" in error, f"the error does not name the proxy: {error!r}"
    for needle in needles:
        assert needle in error, f"{needle!r} not in the record's error {error!r}"
    if kind == "http-proxy":
        assert record["downstream"]["http_status"] == status, record
    (conn,) = proxy.wait_connections(1)
    assert conn.request_line == f"CONNECT {TARGET} HTTP/1.1", conn
    assert conn.finished.wait(5), "the bridge kept its connection to the misbehaving proxy open after the record"
    if with_credentials:
        assert_no_secret(error, b.session_log.read_text(), b.stderr())


@pytest.mark.parametrize("kind", ["plain", "http-proxy"])
def test_a_proxy_port_nobody_listens_on_fails_in_phase_connect(bridge, pki, legacy_pki, via_pki, kind):
    address = f"127.0.0.1:{closed_port()}"
    b = via_bridge(bridge, pki, via_pki, f"http://{address}", kind=kind, legacy_pki=legacy_pki)
    if kind == "plain":
        plain_merchant_is_closed_on(b)
    else:
        http_proxy_merchant_gets(b, 502)
    record = b.wait_record()
    assert_via_record(record, via=address)
    assert (record["phase"], record["close"]) == ("connect", "upstream_error"), record
    assert "outbound proxy" in (record["error"] or "") and address in record["error"], record


def test_a_proxy_name_the_bridge_cannot_resolve_fails_in_phase_resolve(bridge, pki, via_pki, dns_stub):
    stub = dns_stub({})
    via = f"{PROXY_NAME}:3128"
    b = via_bridge(bridge, pki, via_pki, f"http://{via}", kind="plain",
                   dns={"nameservers": [stub.address], "timeout": "2s"})
    plain_merchant_is_closed_on(b)
    record = b.wait_record()
    assert_via_record(record, via=via)
    assert (record["phase"], record["close"]) == ("resolve", "upstream_error"), record
    assert PROXY_NAME in (record["error"] or "") and "proxy" in record["error"], record
    names = {name for name, _ in stub.queries}
    assert PROXY_NAME in names and SANDBOX not in names, \
        f"the bridge asked for {names}: only the proxy's name is its to resolve"


def test_a_refused_connect_inside_a_merchants_connect_tunnel_ends_its_tls(bridge, pki, legacy_pki, via_pki, hostile):
    """An http-proxy CONNECT is answered 200 before the gateway is dialled; a refused outbound CONNECT then ends
    the merchant's TLS with nothing delivered, and the record keeps http_status 200 and phase tunnel."""
    import ssl
    proxy = hostile("refuse")
    b = via_bridge(bridge, pki, via_pki, f"http://{proxy.address}", kind="http-proxy", legacy_pki=legacy_pki)
    tls, _ = connect_tunnel(b, TARGET, ctx=legacy_tunnel_context(legacy_pki))
    with tls:
        tls.settimeout(10)
        try:
            tls.sendall(request_bytes("GET", "/pay", [("Host", SANDBOX)]))
            data = tls.recv(100)
        except (ssl.SSLError, OSError):
            data = b""
    assert data == b"", data
    record = b.wait_record()
    assert record["downstream"]["http_status"] == 200 and record["phase"] == "tunnel", record
    assert "refused CONNECT" in (record["error"] or ""), record


@pytest.mark.parametrize("kind", ["plain", "http-proxy"])
def test_a_proxy_that_closes_right_after_200_fails_the_gateway_handshake(bridge, pki, legacy_pki, via_pki, hostile,
                                                                          kind):
    proxy = hostile("close_after_200")
    b = via_bridge(bridge, pki, via_pki, f"http://{proxy.address}", kind=kind, legacy_pki=legacy_pki)
    if kind == "plain":
        plain_merchant_is_closed_on(b)
    else:
        resp, closed = bridge_answer(b, request_bytes("GET", f"http://{SANDBOX}/pay", [("Host", SANDBOX)]),
                                     timeout=15)
        assert_bridge_error(resp, closed, 502)
    record = b.wait_record()
    assert_via_record(record, via=proxy.address, proxy_address=proxy.address)
    assert (record["phase"], record["close"]) == ("handshake", "upstream_error"), record
    assert record["upstream"]["protocol"] is None and record["error"], record
    assert f"through the outbound proxy {proxy.address}" in record["error"], \
        f"a TLS failure inside the tunnel does not name the proxy as the hop: {record['error']!r}"


def test_a_proxy_that_drops_an_open_tunnel_ends_the_session(bridge, pki, via_pki, gw, hostile):
    proxy = hostile("close_mid_tunnel", target=("127.0.0.1", gw.port))
    b = via_bridge(bridge, pki, via_pki, f"http://{proxy.address}", kind="plain")
    with b.connect() as s:
        s.sendall(request_bytes("GET", "/first", [("Host", SANDBOX)]))
        resp = read_response(SockReader(s, 15))
        assert resp.status == 200 and resp.text.startswith("gw GET /first "), resp
        proxy.cut.set()
        data, waited = wait_closed(s, 10)
    assert data == b"" and waited < 5, (data[:100], waited)
    record = b.wait_record()
    assert_via_record(record, via=proxy.address, proxy_address=proxy.address)
    assert record["phase"] == "open" and record["close"] in ("upstream_eof", "upstream_error"), record
    assert record["upstream"]["protocol"] == "TLSv1.2" and record["bytes"]["down"] == len(resp.raw_head) + len(resp.body)


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate", 'Digest realm="corp", nonce="abc"'])
def test_a_407_for_a_scheme_other_than_basic_names_that_scheme(bridge, pki, via_pki, hostile, tmp_path, scheme):
    """A corporate proxy that offers only NTLM, Negotiate or Digest: the record names the scheme it asked for."""
    proxy = hostile("want_auth", authenticate=scheme)
    b = via_bridge(bridge, pki, via_pki, f"http://{proxy.address}", kind="plain",
                   credentials=write_credentials(tmp_path / "proxy.credentials"))
    plain_merchant_is_closed_on(b)
    record = b.wait_record()
    assert (record["phase"], record["close"]) == ("tunnel", "upstream_error"), record
    error = record["error"] or ""
    assert f"outbound proxy {proxy.address}" in error and scheme.split()[0] in error and "407" in error, error
    assert_no_secret(error, b.session_log.read_text(), b.stderr())


@pytest.mark.parametrize("with_credentials", [False, True], ids=["no-credentials", "with-credentials"])
def test_a_proxy_that_offers_only_ntlm_is_named_as_such_not_as_a_wrong_password(bridge, pki, legacy_pki, via_pki,
                                                                                hostile, tmp_path, with_credentials):
    """A Windows domain proxy offering only NTLM: the bridge speaks Basic only, and the record and the merchant's
    502 say that, instead of blaming via_credentials (which would send the operator after a typo that is not there)."""
    proxy = hostile("reject_credentials" if with_credentials else "want_auth", lifetime=20, authenticate="NTLM")
    credentials = write_credentials(tmp_path / "proxy.credentials") if with_credentials else None
    b = via_bridge(bridge, pki, via_pki, f"http://{proxy.address}", kind="http-proxy", legacy_pki=legacy_pki,
                   credentials=credentials)
    said = http_proxy_merchant_gets(b, 502)
    record = b.wait_record()
    assert (record["phase"], record["close"]) == ("tunnel", "upstream_error"), record
    error = record["error"] or ""
    for text in (error, said):
        assert f"wants NTLM authentication for CONNECT {TARGET}" in text and "speaks only Basic" in text, text
        assert "rejected the credentials" not in text, text
