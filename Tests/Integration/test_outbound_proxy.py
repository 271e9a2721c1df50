"""`[[upstream]] via` (issue #16): the merchant's outbound HTTP proxy, a real Squid from Debian.

The gateway's name (`sandbox.paygent.test`) is known to Squid alone (its hosts_file); the bridge resolves through
a DNS stub that knows only the proxy's name. So every session that reaches the gateway went through Squid, and
Squid's access log shows the CONNECT. Inside the tunnel the upstream policy is unchanged: TLS 1.2 to a gateway
that requires the merchant's client certificate, SNI and name verification for the gateway's name.
Squid runs once per module per variant (no authentication / Basic through basic_ncsa_auth): ~2 s to start and stop.
"""

from __future__ import annotations

import hashlib
import socket

import pytest

from support.bridge import base_config, free_port, reload_with, to_toml, wait_closed
from support.certs import MERCHANT_CN
from support.legacy import LEGACY_CIPHERS, SANDBOX, client_context, s_client, tls_listener
from support.outbound_proxy import (PROXY_NAME, PROXY_PASSWORD, PROXY_USER, HostileProxy, Squid, assert_no_secret,
                                    assert_via_record, basic_authorization, gateway_context, generate_via_pki,
                                    parse_connect, via_upstream, write_credentials)
from support.proxy import (HttpGateway, SockReader, curl, legacy_curl_flags, proxy_listener, read_response,
                           request_bytes)
from support.servers import generated_chunks

KIB = 1024
ROUTES = {SANDBOX: "gw"}


# --- module fixtures: one gateway, two Squids -----------------------------------------------------------------

@pytest.fixture(scope="module")
def via_pki(pki, tmp_path_factory):
    return generate_via_pki(tmp_path_factory.mktemp("via-pki"), pki)


@pytest.fixture(scope="module")
def gw(pki, via_pki):
    """The payment gateway: TLS 1.2 only, merchant certificate required, certificate for sandbox.paygent.test."""
    server = HttpGateway(gateway_context(pki, via_pki), name="gw").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def squids(gw, tmp_path_factory):
    logs = tmp_path_factory.mktemp("squid-logs")
    started = {}
    try:
        started["open"] = Squid([gw.port], keep=logs / "open").start()
        started["auth"] = Squid([gw.port], users={PROXY_USER: PROXY_PASSWORD}, keep=logs / "auth").start()
        yield started
    finally:
        for squid in started.values():
            squid.stop()


@pytest.fixture(params=["open", "auth"], ids=["squid", "squid-basic-auth"])
def squid_case(request, squids, tmp_path):
    """(Squid, via_credentials file or None)."""
    if request.param == "open":
        return squids["open"], None
    return squids["auth"], write_credentials(tmp_path / "proxy.credentials")


@pytest.fixture
def proxy_dns(dns_stub):
    """The bridge's only name server: knows the proxy's name, not the gateway's."""
    return dns_stub({PROXY_NAME: "127.0.0.1"})


def via_of(squid: Squid) -> str:
    return f"http://{PROXY_NAME}:{squid.port}"


def start_via_bridge(bridge, pki, via_pki, gw, stub, squid, credentials, *, listener=None, level="debug",
                     limits=None, start=True):
    """A bridge whose upstream gw goes through `squid`, resolving only through `stub`; at debug level, so that the
    no-credentials-in-logs checks look at the chattiest output."""
    return bridge(f"{SANDBOX}:{gw.port}", upstream=via_upstream(pki, via_pki, via_of(squid), credentials=credentials),
                  dns={"nameservers": [stub.address], "timeout": "2s"}, listener=listener, level=level, limits=limits,
                  start=start)


def names_the_proxy(text: str | None, squid: Squid) -> bool:
    """The error names the outbound proxy, by its configured name or the address connected to."""
    text = text or ""
    return "outbound proxy" in text and (f"{PROXY_NAME}:{squid.port}" in text or squid.address in text)


def assert_merchant_closed(b) -> None:
    """A plain merchant whose session cannot reach the gateway: closed (EOF or reset), nothing delivered."""
    with b.connect() as s:
        s.sendall(request_bytes("GET", "/pay", [("Host", SANDBOX)]))
        data, _ = wait_closed(s, 15)
    assert data == b"", f"a failed session delivered {data[:200]!r}"


def new_connections(gw, before: int, count: int, timeout: float = 15.0):
    conns = gw.wait_connections(before + count, timeout)[before:]
    for conn in conns:
        conn.finished.wait(timeout)
    return conns


def assert_went_through_squid(b, squid: Squid, mark: int, stub, gw_conns, records, *, credentials,
                              expect: int) -> None:
    """The far side saw the merchant's identity over TLS 1.2 with SNI = the gateway's name; Squid logged each
    CONNECT (as the configured user); the bridge asked its DNS for the proxy, never the gateway; the records
    carry the via; the credentials appear nowhere."""
    assert len(gw_conns) == expect, gw_conns
    for conn in gw_conns:
        assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN and conn.sni == SANDBOX, conn
    tunnels = squid.tunnels_to(b.config["upstream"][0]["address"], count=expect, since=mark)
    assert len(tunnels) >= expect, f"Squid logged no CONNECT tunnel for the session(s): {squid.access()}"
    assert all(t.user == (PROXY_USER if credentials else "-") for t in tunnels), tunnels
    names = {name for name, _ in stub.queries}
    assert PROXY_NAME in names, f"the bridge did not resolve the proxy through [dns]: {stub.queries}"
    assert SANDBOX not in names, f"the bridge tried to resolve the gateway's name itself: {stub.queries}"
    assert len(records) == expect, records
    for record in records:
        assert_via_record(record, via=f"{PROXY_NAME}:{squid.port}", proxy_address=squid.address)
        assert record["error"] is None, record
        up = record["upstream"]
        assert up["protocol"] == "TLSv1.2" and up["verify"] == "ok", up
        assert up["server_name"] == SANDBOX, up
        assert f"CN={MERCHANT_CN}" in (up["client_cert"] or ""), up
        assert "CN=Via Test CA" in (up["peer_issuer"] or ""), up
    assert_no_secret(b.session_log.read_text(), b.stderr(), b.stdout_path.read_text(errors="replace"))


# --- end to end through Squid ----------------------------------------------------------------------------------

def test_plain_listener_curl_post_of_256_kib_reaches_the_gateway_through_squid(bridge, pki, via_pki, gw, squid_case,
                                                                              proxy_dns, tmp_path):
    squid, credentials = squid_case
    before, mark = len(gw.connections), squid.mark()
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, credentials)
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(161, 256 * KIB)))
    out = tmp_path / "out.bin"
    host, port = b.listen
    from support.proxy import run
    result = run(["curl", "-sS", "--max-time", "20", "-H", "Expect:", "--data-binary", f"@{body}", "-o", str(out),
                  "-w", "%{http_code}", f"http://{host}:{port}/echo"], timeout=30)
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes(), "the echoed body differs"
    conns = new_connections(gw, before, 1)
    assert [(r.method, r.target, r.body_digest) for r in conns[0].requests] == \
        [("POST", "/echo", hashlib.sha256(body.read_bytes()).hexdigest())], conns[0].requests
    record = b.wait_record()
    assert record["listener"] == "plain" and record["downstream"]["protocol"] == "plain", record
    assert record["bytes"]["down"] > 256 * KIB and record["bytes"]["up"] > 256 * KIB, record["bytes"]
    assert_went_through_squid(b, squid, mark, proxy_dns, conns, [record], credentials=credentials, expect=1)


@pytest.mark.parametrize("client", ["python-ssl", "openssl-s_client"])
def test_tls10_merchant_on_a_legacy_listener_reaches_the_gateway_through_squid(bridge, pki, legacy_pki, via_pki, gw,
                                                                              squid_case, proxy_dns, client):
    squid, credentials = squid_case
    before, mark = len(gw.connections), squid.mark()
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, credentials,
                         listener=tls_listener(legacy_pki, min_version="TLS1.0", routes=ROUTES))
    payload = b"".join(generated_chunks(162, 64 * KIB))
    request = request_bytes("POST", "/echo", [("Host", SANDBOX), ("Content-Length", str(len(payload))),
                                              ("Connection", "close")], payload)
    if client == "python-ssl":
        ctx = client_context("TLSv1", cafile=legacy_pki.listener_ca)
        with ctx.wrap_socket(socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX) as tls:
            assert tls.version() == "TLSv1"
            tls.sendall(request)
            resp = read_response(SockReader(tls, 20), method="POST")
        status, body = resp.status, resp.body
    else:
        result = s_client(b.listen[1], "-tls1", "-cipher", LEGACY_CIPHERS, "-servername", SANDBOX,
                          "-CAfile", str(legacy_pki.listener_ca), "-verify_return_error", stdin=request)
        head, _, body = result.stdout.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
        assert status is not None, (result.stdout[:300], result.stderr[-800:])
    assert status == 200 and body == payload, (status, len(body))
    conns = new_connections(gw, before, 1)
    record = b.wait_record()
    assert record["listener"] == "legacy" and record["downstream"]["protocol"] == "TLSv1", record
    assert record["downstream"]["sni"] == SANDBOX, record
    assert_went_through_squid(b, squid, mark, proxy_dns, conns, [record], credentials=credentials, expect=1)


def test_http_proxy_listener_connect_and_absolute_form_reach_the_gateway_through_squid(bridge, pki, legacy_pki,
                                                                                     via_pki, gw, squid_case,
                                                                                     proxy_dns, tmp_path):
    squid, credentials = squid_case
    before, mark = len(gw.connections), squid.mark()
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, credentials,
                         listener=proxy_listener(legacy_pki, routes=ROUTES))
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(163, 256 * KIB)))
    out = tmp_path / "out.bin"
    # CONNECT from a TLS 1.0 curl (no --resolve: the merchant's proxy settings send the name)
    result = curl(b, *legacy_curl_flags(legacy_pki), "-H", "Expect:", "--data-binary", f"@{body}", "-o", str(out),
                  "-w", "%{http_code} %{http_connect}", f"https://{SANDBOX}:443/echo")
    assert result.stdout == b"200 200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes(), "the echoed body differs"
    first = b.wait_records(1)
    # absolute-form http:// upgraded to TLS 1.2 by the bridge
    out2 = tmp_path / "out2.txt"
    result = curl(b, "-o", str(out2), "-w", "%{http_code}", f"http://{SANDBOX}/pay?x=1")
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out2.read_text().startswith("gw GET /pay?x=1 "), out2.read_text()
    conns = new_connections(gw, before, 2)
    records = b.wait_records(2)
    assert len(first) == 1 and first[0]["downstream"]["connect"].lower() == f"{SANDBOX}:443", first
    assert first[0]["downstream"]["protocol"] == "TLSv1", first
    assert (records[1]["downstream"]["request_host"] or "").lower() == SANDBOX, records[1]
    assert [(r.method, r.target) for c in conns for r in c.requests] == [("POST", "/echo"), ("GET", "/pay?x=1")]
    assert_went_through_squid(b, squid, mark, proxy_dns, conns, records, credentials=credentials, expect=2)


# --- what Squid itself refuses ---------------------------------------------------------------------------------

def test_squid_refusing_a_port_is_recorded_as_a_refused_connect(bridge, pki, via_pki, gw, squids, proxy_dns):
    """Squid allows CONNECT to the gateway's port only: another port gets its 403, the session's record says so."""
    squid = squids["open"]
    mark = squid.mark()
    other = free_port()
    b = bridge(f"{SANDBOX}:{other}", upstream=via_upstream(pki, via_pki, via_of(squid)),
               dns={"nameservers": [proxy_dns.address], "timeout": "2s"})
    assert_merchant_closed(b)
    record = b.wait_record()
    assert_via_record(record, via=f"{PROXY_NAME}:{squid.port}", proxy_address=squid.address)
    assert record["phase"] == "tunnel" and record["close"] == "upstream_error", record
    error = record["error"] or ""
    assert names_the_proxy(error, squid), record
    for needle in (f"refused CONNECT {SANDBOX}:{other}", "403 Forbidden"):
        assert needle in error, f"{needle!r} not in the record's error {error!r}"
    denied = squid.wait_access(lambda e: e.code == "TCP_DENIED" and e.url == f"{SANDBOX}:{other}", since=mark)
    assert denied and denied[0].status == 403, squid.access()


def test_squid_asking_for_credentials_when_none_are_configured(bridge, pki, via_pki, gw, squids, proxy_dns):
    squid = squids["auth"]
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, None)
    assert_merchant_closed(b)
    record = b.wait_record()
    assert record["phase"] == "tunnel" and record["close"] == "upstream_error", record
    error = record["error"] or ""
    assert names_the_proxy(error, squid), record
    assert "wants credentials" in error and 'Basic realm="tls-bridge-test"' in error and "via_credentials" in error, \
        record


def test_squid_rejecting_the_configured_credentials(bridge, pki, via_pki, gw, squids, proxy_dns, tmp_path):
    squid = squids["auth"]
    wrong = write_credentials(tmp_path / "wrong.credentials", password="not-" + PROXY_PASSWORD)
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, wrong, level="debug")
    assert_merchant_closed(b)
    record = b.wait_record()
    assert record["phase"] == "tunnel" and record["close"] == "upstream_error", record
    assert names_the_proxy(record["error"], squid), record
    assert "rejected the credentials in via_credentials" in (record["error"] or ""), record
    assert_no_secret(b.session_log.read_text(), b.stderr(), secrets=["not-" + PROXY_PASSWORD])


# --- what the bridge sends to the proxy --------------------------------------------------------------------------

@pytest.mark.parametrize("with_credentials", [False, True], ids=["no-credentials", "basic-credentials"])
def test_connect_request_is_exactly_what_a_proxy_expects(bridge, pki, via_pki, gw, dns_stub, tmp_path,
                                                          with_credentials):
    """A recording proxy relays to the gateway (whose name the bridge never resolves: via is an IP, the DNS stub
    is empty and asked nothing). The head: `CONNECT sandbox.paygent.test:443 HTTP/1.1`, one Host with the same
    authority, Proxy-Authorization only with via_credentials; the credentials never reach a log or record."""
    recorder = HostileProxy("record", target=("127.0.0.1", gw.port)).start()
    try:
        stub = dns_stub({})
        credentials = write_credentials(tmp_path / "proxy.credentials") if with_credentials else None
        via = f"http://127.0.0.1:{recorder.port}"
        b = bridge(f"{SANDBOX}:443", upstream=via_upstream(pki, via_pki, via, credentials=credentials),
                   dns={"nameservers": [stub.address], "timeout": "2s"}, level="debug")
        before = len(gw.connections)
        with b.connect() as s:
            s.sendall(request_bytes("GET", "/recorded", [("Host", SANDBOX), ("Connection", "close")]))
            resp = read_response(SockReader(s, 15))
        assert resp.status == 200 and resp.text.startswith("gw GET /recorded "), resp
        (conn,) = new_connections(gw, before, 1)
        assert conn.sni == SANDBOX and conn.client_cn == MERCHANT_CN, conn
        heads = recorder.heads()
        assert len(heads) == 1, heads
        line, headers = parse_connect(heads[0])
        assert line == f"CONNECT {SANDBOX}:443 HTTP/1.1", heads[0]
        hosts = [v for k, v in headers if k.lower() == "host"]
        assert hosts == [f"{SANDBOX}:443"], heads[0]
        auth = [v for k, v in headers if k.lower() == "proxy-authorization"]
        assert auth == ([basic_authorization()] if with_credentials else []), heads[0]
        assert stub.queries == [], f"the bridge resolved something although via is an IP: {stub.queries}"
        record = b.wait_record()
        assert_via_record(record, via=f"127.0.0.1:{recorder.port}", proxy_address=recorder.address)
        assert record["error"] is None and record["upstream"]["protocol"] == "TLSv1.2", record
        check = b.binary
        from support.bridge import run_cli
        shown = run_cli(check, "check", "--config", str(b.config_path))
        b.stop()
        assert_no_secret(b.session_log.read_text(), b.stderr(), b.stdout_path.read_text(errors="replace"),
                         shown.stdout, shown.stderr)
    finally:
        recorder.stop()


def test_the_gateway_name_is_verified_inside_the_tunnel(bridge, pki, via_pki, dns_stub):
    """A gateway whose certificate names another host, reached through a relaying proxy: refused in phase
    handshake (the name checked is the gateway's, not the proxy's), nothing delivered."""
    wrong = HttpGateway(gateway_context(pki, via_pki, cert=via_pki.wrong_name_cert), name="gw").start()
    recorder = HostileProxy("record", target=("127.0.0.1", wrong.port)).start()
    try:
        b = bridge(f"{SANDBOX}:443", upstream=via_upstream(pki, via_pki, f"http://127.0.0.1:{recorder.port}"))
        assert_merchant_closed(b)
        record = b.wait_record()
        assert_via_record(record, via=f"127.0.0.1:{recorder.port}", proxy_address=recorder.address)
        assert record["phase"] == "handshake" and record["close"] == "upstream_error", record
        assert record["upstream"]["protocol"] is None, record
        assert "hostname mismatch" in (record["error"] or ""), record
        assert f"through the outbound proxy {recorder.address}" in record["error"], record
        assert record["upstream"]["verify"] == "hostname mismatch", record["upstream"]
        assert all(not c.requests for c in wrong.connections), "a request reached a gateway that failed verification"
    finally:
        recorder.stop()
        wrong.stop()


# --- probe and the deep health check go through the proxy too ----------------------------------------------------

def write_via_config(tmp_path, pki, via_pki, address: str, via: str, *, credentials=None, dns=None, admin_port=None):
    cfg = base_config(pki, tmp_path, address, upstream=via_upstream(pki, via_pki, via, credentials=credentials),
                      dns=dns)
    if admin_port is not None:
        cfg["admin"] = {"listen": f"127.0.0.1:{admin_port}"}
    path = tmp_path / "via.toml"
    path.write_text(to_toml(cfg))
    return path


def test_probe_goes_through_squid(cli, pki, via_pki, gw, squids, proxy_dns, tmp_path):
    squid = squids["auth"]
    before, mark = len(gw.connections), squid.mark()
    path = write_via_config(tmp_path, pki, via_pki, f"{SANDBOX}:{gw.port}", via_of(squid),
                            credentials=write_credentials(tmp_path / "proxy.credentials"),
                            dns={"nameservers": [proxy_dns.address], "timeout": "2s"})
    result = cli("probe", "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification: ok" in result.stdout and "TLSv1.2" in result.stdout, result.stdout
    assert f"CN={SANDBOX}" in result.stdout, result.stdout
    (conn,) = new_connections(gw, before, 1)
    assert conn.sni == SANDBOX and conn.tls_version == "TLSv1.2", conn
    assert squid.tunnels_to(f"{SANDBOX}:{gw.port}", since=mark), squid.access(mark)
    assert SANDBOX not in {n for n, _ in proxy_dns.queries}, proxy_dns.queries
    assert_no_secret(result.stdout, result.stderr)


def test_probe_through_a_refusing_proxy_fails_naming_the_proxy(cli, pki, via_pki, tmp_path):
    with HostileProxy("refuse") as refusing:
        path = write_via_config(tmp_path, pki, via_pki, f"{SANDBOX}:443", f"http://127.0.0.1:{refusing.port}")
        result = cli("probe", "--config", str(path))
        assert result.returncode != 0, result.stdout + result.stderr
        text = result.stdout + result.stderr
        assert f"127.0.0.1:{refusing.port}" in text and "403" in text, text
        assert "proxy" in text.lower(), text
        assert len(refusing.heads()) == 1, "probe did not send its CONNECT to the proxy"


def test_deep_healthz_goes_through_the_proxy(bridge, pki, via_pki, gw, squids, proxy_dns):
    import urllib.error
    import urllib.request

    def get(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?deep=1", timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    squid = squids["open"]
    port = free_port()
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, None, start=False)
    b.config["admin"] = {"listen": f"127.0.0.1:{port}"}
    b.start()
    mark = squid.mark()
    status, body = get(port)
    assert status == 200, body
    assert squid.tunnels_to(f"{SANDBOX}:{gw.port}", since=mark), f"the deep check did not go through Squid: " \
        f"{squid.access(mark)}"

    with HostileProxy("refuse") as refusing:
        port2 = free_port()
        down = bridge(f"{SANDBOX}:443", upstream=via_upstream(pki, via_pki, f"http://127.0.0.1:{refusing.port}"),
                      start=False)
        down.config["admin"] = {"listen": f"127.0.0.1:{port2}"}
        down.start()
        status, body = get(port2)
        assert status == 503 and "gw" in body and f"127.0.0.1:{refusing.port}" in body, body


# --- reload ------------------------------------------------------------------------------------------------------

def test_a_reload_picks_up_a_changed_via(bridge, pki, via_pki, gw):
    refusing = HostileProxy("refuse").start()
    recorder = HostileProxy("record", target=("127.0.0.1", gw.port)).start()
    try:
        b = bridge(f"{SANDBOX}:443", upstream=via_upstream(pki, via_pki, f"http://{refusing.address}"))
        assert_merchant_closed(b)
        first = b.wait_records(1)[0]
        assert first["phase"] == "tunnel" and first["upstream"]["via"] == refusing.address, first
        config = dict(b.config, upstream=[dict(b.config["upstream"][0], via=f"http://{recorder.address}")])
        b.config = config
        reload_with(b, config)
        with b.connect() as s:
            s.sendall(request_bytes("GET", "/after", [("Host", SANDBOX), ("Connection", "close")]))
            resp = read_response(SockReader(s, 15))
        assert resp.status == 200 and resp.text.startswith("gw GET /after "), resp
        second = b.wait_records(2)[1]
        assert_via_record(second, via=recorder.address, proxy_address=recorder.address)
        assert second["error"] is None, second
        assert len(refusing.heads()) == 1 and len(recorder.heads()) == 1, (refusing.heads(), recorder.heads())
    finally:
        recorder.stop()
        refusing.stop()


# --- the gateway closes first ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["plain", "legacy-tls", "http-proxy-connect"])
def test_a_gateway_that_closes_after_a_200_kib_answer_ends_the_session_once_with_every_byte(bridge, pki, legacy_pki,
                                                                                          via_pki, gw, kind):
    """`Connection: close`: the gateway sends its answer and close_notify through the tunnel, then closes. The
    merchant gets the whole answer, and the session has exactly one record (bytes.down = all of it)."""
    recorder = HostileProxy("record", target=("127.0.0.1", gw.port)).start()
    try:
        listener = {"legacy-tls": tls_listener(legacy_pki, min_version="TLS1.0", routes=ROUTES),
                    "http-proxy-connect": proxy_listener(legacy_pki, routes=ROUTES)}.get(kind)
        b = bridge(f"{SANDBOX}:{gw.port}", upstream=via_upstream(pki, via_pki, f"http://{recorder.address}"),
                   listener=listener)
        payload = b"".join(generated_chunks(164, 200 * KIB))
        request = request_bytes("POST", "/echo", [("Host", SANDBOX), ("Content-Length", str(len(payload))),
                                                  ("Connection", "close")], payload)
        if kind == "plain":
            sock = b.connect()
        elif kind == "legacy-tls":
            sock = client_context("TLSv1", cafile=legacy_pki.listener_ca).wrap_socket(
                socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX)
        else:
            from support.proxy import connect_tunnel, legacy_tunnel_context
            sock, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki))
        with sock:
            sock.sendall(request)
            reader = SockReader(sock, 20)
            resp = read_response(reader, method="POST")
            assert reader.rest() == b"", "bytes after the answer"
        assert resp.status == 200 and len(resp.body) == len(payload) and resp.body == payload, \
            f"{len(resp.body)} of {len(payload)} body bytes arrived"
        record = b.wait_record()
        import time
        time.sleep(0.3)  # a second record for the same session would come right after the first
        records = b.records()
        assert len(records) == 1, f"{len(records)} records for one session: " \
            f"{[(r['session'], r['bytes'], r['close']) for r in records]}"
        assert record["close"] == "upstream_eof" and record["error"] is None, record
        assert record["bytes"]["down"] == len(resp.raw_head) + len(resp.body), record["bytes"]
    finally:
        recorder.stop()


# --- what counts as the proxy's yes ------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, dribble", [
    (b"HTTP/1.0 200 Connection established\r\nProxy-agent: OldProxy/1.0\r\n\r\n", 0.0),
    (b"HTTP/1.1 200 OK\r\nVia: 1.1 corp-proxy\r\nDate: Thu, 03 Dec 2026 20:00:00 GMT\r\n\r\n", 0.0),
    (b"HTTP/1.1 200 Connection established\r\nProxy-agent: Slow/1.0\r\n\r\n", 0.005),
], ids=["http1.0-with-proxy-agent", "http1.1-with-headers", "one-byte-at-a-time"])
def test_a_2xx_answer_with_headers_opens_the_tunnel(bridge, pki, via_pki, gw, answer, dribble):
    """Older proxies answer CONNECT in HTTP/1.0 and with headers of their own, and an answer may come in
    pieces (here one byte per segment): still a yes."""
    recorder = HostileProxy("record", target=("127.0.0.1", gw.port), ok_answer=answer, dribble=dribble).start()
    try:
        b = bridge(f"{SANDBOX}:443", upstream=via_upstream(pki, via_pki, f"http://{recorder.address}"))
        with b.connect() as s:
            s.sendall(request_bytes("GET", "/yes", [("Host", SANDBOX), ("Connection", "close")]))
            resp = read_response(SockReader(s, 15))
        assert resp.status == 200 and resp.text.startswith("gw GET /yes "), resp
        record = b.wait_record()
        assert_via_record(record, via=recorder.address, proxy_address=recorder.address)
        assert record["error"] is None and record["upstream"]["protocol"] == "TLSv1.2", record
    finally:
        recorder.stop()


def test_a_direct_upstream_records_via_as_null(bridge, pki, via_pki, gw, dns_stub):
    stub = dns_stub({SANDBOX: "127.0.0.1"})
    upstream = via_upstream(pki, via_pki, "unused")
    upstream["via"] = None
    b = bridge(f"{SANDBOX}:{gw.port}", upstream=upstream, dns={"nameservers": [stub.address], "timeout": "2s"})
    with b.connect() as s:
        s.sendall(request_bytes("GET", "/direct", [("Host", SANDBOX)]))
        assert read_response(SockReader(s, 15)).status == 200
    record = b.wait_record()
    assert "via" in record["upstream"] and record["upstream"]["via"] is None, record["upstream"]
    assert record["upstream"]["address"] == gw.address, record["upstream"]


def test_thirty_concurrent_sessions_through_squid_with_basic_auth(bridge, pki, via_pki, gw, squids, proxy_dns,
                                                                  tmp_path):
    """Thirty merchants at once through one authenticating Squid: every echo intact, thirty records with distinct
    ids, thirty tunnels in Squid's log."""
    import threading
    squid = squids["auth"]
    before, mark = len(gw.connections), squid.mark()
    b = start_via_bridge(bridge, pki, via_pki, gw, proxy_dns, squid, write_credentials(tmp_path / "proxy.credentials"),
                         level="info")
    results: list[bool] = []

    def merchant(i: int) -> None:
        body = bytes([i]) * (40 * KIB)
        with b.connect() as s:
            s.sendall(request_bytes("POST", "/echo", [("Host", SANDBOX), ("Content-Length", str(len(body))),
                                                      ("Connection", "close")], body))
            results.append(read_response(SockReader(s, 30), method="POST").body == body)

    threads = [threading.Thread(target=merchant, args=(i,), daemon=True) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results.count(True) == 30, f"{results.count(True)} of 30 echoes intact ({len(results)} finished)"
    records = b.wait_records(30, 20)
    assert len(records) == 30 and len({r["session"] for r in records}) == 30, len(records)
    assert all(r["error"] is None and r["upstream"]["via"] == f"{PROXY_NAME}:{squid.port}" for r in records), \
        [r["error"] for r in records if r["error"]]
    assert len(new_connections(gw, before, 30)) == 30
    assert len(squid.tunnels_to(f"{SANDBOX}:{gw.port}", count=30, since=mark)) == 30, squid.access(mark)


def test_a_password_with_colons_and_non_ascii_is_sent_whole(bridge, pki, via_pki, gw, tmp_path):
    """Basic splits user and password at the first colon only: the rest of the line is the password."""
    import base64
    password = "pa:ss:wörd-9c1e"
    recorder = HostileProxy("record", target=("127.0.0.1", gw.port)).start()
    try:
        creds = write_credentials(tmp_path / "proxy.credentials", password=password)
        b = bridge(f"{SANDBOX}:443", upstream=via_upstream(pki, via_pki, f"http://{recorder.address}",
                                                         credentials=creds), level="debug")
        with b.connect() as s:
            s.sendall(request_bytes("GET", "/colon", [("Host", SANDBOX), ("Connection", "close")]))
            assert read_response(SockReader(s, 15)).status == 200
        (conn,) = recorder.wait_connections(1)
        (auth,) = conn.header("proxy-authorization")
        scheme, _, token = auth.partition(" ")
        assert scheme == "Basic" and base64.b64decode(token) == f"{PROXY_USER}:{password}".encode(), auth
        b.wait_record()
        assert_no_secret(b.session_log.read_text(), b.stderr(), secrets=[password, token])
    finally:
        recorder.stop()
