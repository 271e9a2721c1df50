"""Real clients whose only setting is "use this proxy" reach the gateway through an http-proxy listener: Python
`requests` (proxies=..., verify=the bridge CA), stdlib `urllib.request` with a ProxyHandler (its CONNECT is
HTTP/1.0 without Host) pinned to TLS 1.0, and Java `HttpsURLConnection` with -Dhttps.proxyHost/-Dhttp.proxyHost
and TLS 1.0 re-enabled. Bodies arrive intact at a TLS-1.2-only gateway that requires the merchant certificate."""

from __future__ import annotations

import gc
import hashlib
import ssl
import urllib.request

import pytest

from support.certs import MERCHANT_CN
from support.legacy import LEGACY_CIPHERS, SANDBOX, java_available
from support.proxy import MODULE_ROUTE, check_proxy_record
from support.servers import generated_chunks

try:
    import requests
except ImportError:  # Debian package python3-requests
    requests = None

needs_requests = pytest.mark.skipif(requests is None, reason="python3-requests is not installed in /usr/bin/python3 "
                                                             "(Debian package; add it to scripts/setup)")
needs_java = pytest.mark.skipif(not java_available(), reason="no java/keytool on PATH: the Java client cannot run")


def proxy_url(b) -> str:
    host, port = b.listen
    return f"http://{host}:{port}"


def assert_gateway_got(gw, targets: list[tuple[str, str]], digest: str | None = None) -> None:
    got = [(r.method, r.target) for r in gw.requests()]
    assert got == targets, got
    for conn in gw.connections:
        assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN, conn
    if digest:
        assert gw.requests()[0].body_digest == digest


@needs_requests
def test_requests_posts_through_connect_and_gets_via_absolute_form(proxy_bridge, http_gateway, legacy_pki):
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    body = b"".join(generated_chunks(51, 100_000))
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment, no .netrc
        proxies = {"https": proxy_url(b), "http": proxy_url(b)}
        resp = session.post(f"https://{SANDBOX}/echo", data=body, proxies=proxies, verify=str(legacy_pki.mint_ca),
                            timeout=20)
        assert resp.status_code == 200 and resp.content == body, (resp.status_code, len(resp.content))
        plain = session.get(f"http://{SANDBOX}/plain?q=1", proxies=proxies, timeout=20)
        assert plain.status_code == 200 and plain.text.startswith("gw GET /plain?q=1 "), plain.text
    gc.collect()  # urllib3 1.26 closes a tunnel's socket only when it is collected
    assert_gateway_got(gw, [("POST", "/echo"), ("GET", "/plain?q=1")], hashlib.sha256(body).hexdigest())
    records = b.wait_records(2)
    for record in records:
        check_proxy_record(record)
        assert record["error"] is None, record
    connects = [r for r in records if r["downstream"]["connect"]]
    assert len(connects) == 1 and connects[0]["downstream"]["connect"] == f"{SANDBOX}:443", records
    assert connects[0]["downstream"]["protocol"] in ("TLSv1.2", "TLSv1.3"), connects[0]


@needs_requests
def test_requests_rejects_a_bridge_it_does_not_trust(proxy_bridge, http_gateway, pki):
    """The minted certificate is what is verified: with another CA the client refuses, nothing is sent."""
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://{SANDBOX}/x", proxies={"https": proxy_url(b)}, verify=str(pki.ca), timeout=20)
    assert gw.requests() == []


def test_urllib_tls10_through_an_http10_connect_and_plain_http(proxy_bridge, http_gateway, legacy_pki):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers(LEGACY_CIPHERS)
    ctx.load_verify_locations(str(legacy_pki.mint_ca))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy_url(b), "http": proxy_url(b)}),
        urllib.request.HTTPSHandler(context=ctx))
    body = b"amount=1200&order=A-77"
    with opener.open(urllib.request.Request(f"https://{SANDBOX}/echo", data=body), timeout=20) as resp:
        assert resp.status == 200 and resp.read() == body
    with opener.open(f"http://{MODULE_ROUTE}/module/page", timeout=20) as resp:
        assert resp.status == 200 and resp.read().startswith(b"gw2 GET /module/page ")
    assert_gateway_got(gw, [("POST", "/echo")], hashlib.sha256(body).hexdigest())
    assert [(r.method, r.target) for r in gw2.requests()] == [("GET", "/module/page")]
    records = b.wait_records(2)
    tunnel = next(r for r in records if r["downstream"]["connect"])
    assert tunnel["downstream"]["protocol"] == "TLSv1" and tunnel["upstream"]["protocol"] == "TLSv1.2", tunnel
    plain = next(r for r in records if r is not tunnel)
    assert (plain["downstream"]["request_host"] or "").lower() == MODULE_ROUTE, plain


@needs_java
def test_java_https_url_connection_over_tls10_through_the_proxy(proxy_bridge, http_gateway, legacy_pki, tmp_path):
    from support.proxy import java_proxy_client
    gw = http_gateway("gw")
    b = proxy_bridge(gw)
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(52, 64 * 1024)))
    out = java_proxy_client(tmp_path / "java", b.listen, legacy_pki.mint_ca,
                            [f"https://{SANDBOX}/echo", f"http://{SANDBOX}/echo"], body=body)
    digest = hashlib.sha256(body.read_bytes()).hexdigest()
    assert out.get("0.status") == "200", out
    assert out.get("0.via_proxy") == "true" and out.get("0.sha256") == digest, out
    assert out.get("0.cipher", "").startswith("TLS_"), out
    assert out.get("1.status") == "200" and out.get("1.sha256") == digest, out
    reqs = gw.requests()
    assert [(r.method, r.target) for r in reqs] == [("POST", "/echo"), ("POST", "/echo")], reqs
    assert all(r.body_digest == digest for r in reqs)
    assert all(c.tls_version == "TLSv1.2" and c.client_cn == MERCHANT_CN for c in gw.connections)
    records = b.wait_records(2)
    tunnel = next(r for r in records if r["downstream"]["connect"])
    assert tunnel["downstream"]["protocol"] == "TLSv1", tunnel
    assert tunnel["downstream"]["connect"] == f"{SANDBOX}:443" and tunnel["downstream"]["http_status"] == 200
