"""An http-proxy listener logs destinations, never what was asked of them: no path, no query string, no header value,
no body, at debug level, for forwarded requests, tunnels and refusals alike (a card-number-like query marker and
body marker are searched for in the session log, stderr and stdout)."""

from __future__ import annotations

import base64

from support.legacy import SANDBOX, UNROUTED
from support.proxy import (CARD, QUERY_MARKER, SockReader, bridge_answer, connect_tunnel, curl, legacy_curl_flags,
                           legacy_tunnel_context, open_proxy, read_response, request_bytes)

PATH_MARKER = "secret-path-c9d2e1"
BODY_MARKER = b"BODY-MARKER-5be8a0-" + CARD.encode()
HEADER_MARKER = "hdr-marker-77aa31"


def test_paths_queries_headers_and_bodies_never_reach_the_logs(proxy_bridge, http_gateway, legacy_pki, tmp_path):
    gw = http_gateway("gw")
    b = proxy_bridge(gw, level="debug")
    target = f"/{PATH_MARKER}/pay?{QUERY_MARKER}&cvv=123"
    # absolute-form, forwarded
    with open_proxy(b) as sock:
        sock.sendall(request_bytes("POST", f"http://{SANDBOX}{target}", [
            ("Host", SANDBOX), ("X-Trace", HEADER_MARKER), ("Content-Length", str(len(BODY_MARKER)))], BODY_MARKER))
        assert read_response(SockReader(sock)).status == 200
    # curl, absolute-form and CONNECT
    assert curl(b, "-o", "/dev/null", "-w", "%{http_code}", f"http://{SANDBOX}{target}").stdout == b"200"
    assert curl(b, *legacy_curl_flags(legacy_pki), "-o", "/dev/null", "-w", "%{http_code}",
                f"https://{SANDBOX}{target}").stdout == b"200"
    # a tunnel carrying the markers inside TLS
    tls, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki))
    with tls:
        tls.sendall(request_bytes("GET", target, [("Host", SANDBOX), ("X-Trace", HEADER_MARKER),
                                                  ("Connection", "close")]))
        assert read_response(SockReader(tls)).status == 200
    # refusals: unrouted, https:// absolute-form, malformed
    for data in (request_bytes("GET", f"http://{UNROUTED}{target}", [("Host", UNROUTED), ("X-Trace", HEADER_MARKER)]),
                 request_bytes("GET", f"https://{SANDBOX}{target}", [("Host", SANDBOX)]),
                 f"GET http://{SANDBOX}{target}\r\n\r\n".encode()):
        assert bridge_answer(b, data)[0].status in (400, 403)
    assert len(gw.requests()) == 4
    assert any(QUERY_MARKER in r.target for r in gw.requests()), "the gateway must get the query string"
    b.wait_records(7)
    b.stop()
    logs = {"session log": b.session_log.read_bytes(), "stderr": b.stderr_path.read_bytes(),
            "stdout": b.stdout_path.read_bytes()}
    for name, text in logs.items():
        for marker in (PATH_MARKER.encode(), QUERY_MARKER.encode(), CARD.encode(), b"cvv=123", HEADER_MARKER.encode(),
                       BODY_MARKER, base64.b64encode(BODY_MARKER), BODY_MARKER.hex().encode()):
            assert marker not in text, f"{marker[:30]!r} found in the bridge's {name}"
