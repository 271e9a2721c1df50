"""The merchant's real web servers behind the notify listener learn the gateway's address, never the bridge's and
never one the peer wrote: Apache 2.4 with mod_remoteip and PHP (`$_SERVER['REMOTE_ADDR']`, and the
`HTTP_X_FORWARDED_FOR` / `HTTP_X_REAL_IP` / `HTTP_FORWARDED` a handler might read), through
`client_address_header` (X-Forwarded-For, X-Real-IP) or `proxy_protocol = "v1"` with `RemoteIPProxyProtocol On`;
nginx with the realip module (`$remote_addr` and the `$http_*` variables); both also as the merchant's legacy
TLS 1.0 server. The gateway is 127.0.0.2 (allow_sources admits only it), speaks TLS 1.2, sends two notifications
on one connection, each with its own spoofed address headers (any letter case, repeated, as a list,
`Forwarded`, `X_Real_IP`-style underscore spellings). The servers are started once per module (support/webservers.py).

The request head's own deadline (`header_timeout`) holds on such a listener: a head trickled a byte at a time gets
a 408 and a record, a peer that says nothing after its handshake is closed, both within `header_timeout`, not
after `idle_timeout`."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from support.inbound import (NOTIFY_NAME, assert_delivered_record, can_bind, gateway_connect, gateway_context,
                             legacy_backend, plain_backend, read_response)
from support.webservers import PAGE, PROXY_PROTOCOL, Apache, Nginx, Site

pytestmark = pytest.mark.skipif(not can_bind("127.0.0.2"), reason="127.0.0.2 is not a usable source here")

GATEWAY = "127.0.0.2"                     # the gateway's address; the bridge reaches the servers from 127.0.0.1
SPOOFS = ("203.0.113.9", "198.51.100.7")  # addresses the peer claims for itself
FIRST_SPOOFS = ("X-Forwarded-For: 203.0.113.9\r\nx-forwarded-for: 203.0.113.9, 198.51.100.7\r\n"
                "X-Real-IP: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\n"
                "X_Forwarded_For: 203.0.113.9\r\nX_Real_IP: 203.0.113.9\r\n")
SECOND_SPOOFS = ("X-REAL-IP: 203.0.113.9\r\nx-real-ip: 198.51.100.7\r\nFORWARDED: for=\"203.0.113.9\";proto=https\r\n"
                 "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.7\r\n"
                 "x_real_ip: 203.0.113.9\r\nx_forwarded_for: 203.0.113.9\r\n")
HEADER_TIMEOUT = 2.0
GRACE = 1.5                               # what header_timeout may be late by


@pytest.fixture(scope="module")
def apache(inbound_pki):
    server = Apache([Site("xff", "X-Forwarded-For"), Site("x-real-ip", "X-Real-IP"),
                     Site("proxy", PROXY_PROTOCOL), Site("proxy+xff", (PROXY_PROTOCOL, "X-Forwarded-For")),
                     Site("tls-xff", "X-Forwarded-For", tls=True)],
                    cert=inbound_pki.backend_cert, key=inbound_pki.backend_key)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx(inbound_pki):
    server = Nginx([Site("xff", "X-Forwarded-For"), Site("x-real-ip", "X-Real-IP"),
                    Site("underscores", "X-Real-IP", underscores=True),
                    Site("tls-xff", "X-Forwarded-For", tls=True)],
                   cert=inbound_pki.backend_cert, key=inbound_pki.backend_key)
    server.start()
    yield server
    server.stop()


def notification(spoofs: str, *, close: bool) -> bytes:
    body = b"trading_id=ORD-000123&payment_status=40"
    return (f"POST {PAGE} HTTP/1.1\r\nHost: {NOTIFY_NAME}\r\n{spoofs}"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


def notify_twice(b, ipki, spoof_sets=(FIRST_SPOOFS, SECOND_SPOOFS)) -> list:
    """Two notifications on one TLS 1.2 connection from the gateway's address; the last one closes."""
    responses = []
    with gateway_connect(b.listen, gateway_context(ipki, "TLSv1.2"), source=GATEWAY) as s:
        for n, spoofs in enumerate(spoof_sets, 1):
            s.sendall(notification(spoofs, close=n == len(spoof_sets)))
            responses.append(read_response(s))
    return responses


def assert_application_saw_the_gateway(server, responses, *, headers_checked: bool = True) -> None:
    """Every answer: the server's client address is the gateway; with headers_checked, every address-claiming
    value the application can read names the gateway too (none holds a spoofed address)."""
    for n, response in enumerate(responses, 1):
        assert response.status == 200, f"request {n}: {response.raw[:300]!r}\n{server.error_log()[-2000:]}"
        seen = server.seen(response.body)
        assert seen.remote_addr == GATEWAY, \
            (f"request {n}: the application saw {seen.remote_addr}, not the gateway {GATEWAY}: {seen.raw}\n"
             f"access log:\n{server.access_log()[-1500:]}")
        if headers_checked:
            spoofed = {k: v for k, v in seen.claims.items() if any(a in v for a in SPOOFS)}
            assert not spoofed, f"request {n}: a spoofed address reached the application: {spoofed}; {seen.raw}"
            strays = {k: v for k, v in seen.claims.items() if v not in (GATEWAY, f"for={GATEWAY}")}
            assert not strays, f"request {n}: an address claim that is not the gateway's: {strays}; {seen.raw}"


def assert_one_delivered_session(b, server, site: str, *, header: str | None, protocol: str = "plain") -> None:
    record = b.wait_record()
    assert_delivered_record(record, backend_address=server.address(site), backend_protocol=protocol)
    assert record["downstream"]["address"].startswith(f"{GATEWAY}:"), record["downstream"]
    assert record["backend"]["client_address_header"] == header, record["backend"]


# --- Apache 2.4, mod_remoteip, PHP ------------------------------------------------------------------------------

@pytest.mark.parametrize("header,site", [("X-Forwarded-For", "xff"), ("X-Real-IP", "x-real-ip")])
def test_apache_php_sees_the_gateway_on_every_request_never_the_bridge_or_a_spoof(notify_bridge, apache,
                                                                                  inbound_pki, header, site):
    b = notify_bridge(plain_backend(apache.address(site)), client_address_header=header,
                      allow_sources=[f"{GATEWAY}/32"])
    assert_application_saw_the_gateway(apache, notify_twice(b, inbound_pki))
    assert_one_delivered_session(b, apache, site, header=header)


def test_apache_remoteip_proxy_protocol_sees_the_gateway_whatever_the_peer_writes(notify_bridge, apache,
                                                                                  inbound_pki):
    """proxy_protocol = "v1" alone: REMOTE_ADDR comes from the PROXY line, so no header can change it (the headers
    themselves pass unchanged without client_address_header, as documented: a handler reads REMOTE_ADDR)."""
    b = notify_bridge(plain_backend(apache.address("proxy")), proxy_protocol="v1", allow_sources=[f"{GATEWAY}/32"])
    assert_application_saw_the_gateway(apache, notify_twice(b, inbound_pki), headers_checked=False)
    assert_one_delivered_session(b, apache, "proxy", header=None)


def test_apache_proxy_protocol_and_header_together_agree_and_drop_every_spoof(notify_bridge, apache, inbound_pki):
    b = notify_bridge(plain_backend(apache.address("proxy+xff")), proxy_protocol="v1",
                      client_address_header="X-Forwarded-For", allow_sources=[f"{GATEWAY}/32"])
    assert_application_saw_the_gateway(apache, notify_twice(b, inbound_pki))
    assert_one_delivered_session(b, apache, "proxy+xff", header="X-Forwarded-For")


def test_apache_as_a_legacy_tls_backend_sees_the_gateway(notify_bridge, apache, inbound_pki):
    """mod_ssl with SSLProtocol TLSv1: the header travels inside the bridge's TLS 1.0 to the old server."""
    b = notify_bridge(legacy_backend(apache.address("tls-xff"), inbound_pki, variant="ca"),
                      client_address_header="X-Forwarded-For", allow_sources=[f"{GATEWAY}/32"])
    assert_application_saw_the_gateway(apache, notify_twice(b, inbound_pki))
    assert_one_delivered_session(b, apache, "tls-xff", header="X-Forwarded-For", protocol="TLSv1")


# --- nginx, realip ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header,site", [("X-Forwarded-For", "xff"), ("X-Real-IP", "x-real-ip")])
def test_nginx_realip_sees_the_gateway_on_every_request_never_the_bridge_or_a_spoof(notify_bridge, nginx,
                                                                                    inbound_pki, header, site):
    b = notify_bridge(plain_backend(nginx.address(site)), client_address_header=header,
                      allow_sources=[f"{GATEWAY}/32"])
    assert_application_saw_the_gateway(nginx, notify_twice(b, inbound_pki))
    assert_one_delivered_session(b, nginx, site, header=header)


def test_nginx_as_a_legacy_tls_backend_sees_the_gateway(notify_bridge, nginx, inbound_pki):
    b = notify_bridge(legacy_backend(nginx.address("tls-xff"), inbound_pki, variant="ca"),
                      client_address_header="X-Forwarded-For", allow_sources=[f"{GATEWAY}/32"])
    assert_application_saw_the_gateway(nginx, notify_twice(b, inbound_pki))
    assert_one_delivered_session(b, nginx, "tls-xff", header="X-Forwarded-For", protocol="TLSv1")


def test_a_server_reading_underscores_as_dashes_never_gets_a_spoofed_x_real_ip(notify_bridge, nginx, inbound_pki):
    """nginx with `underscores_in_headers on` reads `X_Real_IP` as `$http_x_real_ip` (the first such header wins),
    as many servers and frameworks do: the peer's underscore spelling must not reach the application."""
    b = notify_bridge(plain_backend(nginx.address("underscores")), client_address_header="X-Real-IP",
                      allow_sources=[f"{GATEWAY}/32"])
    responses = notify_twice(b, inbound_pki, ("X_Real_IP: 203.0.113.9\r\n", "x_real_ip: 198.51.100.7\r\n"))
    assert_application_saw_the_gateway(nginx, responses)


# --- header_timeout on a listener that frames requests ----------------------------------------------------------

def timing_bridge(notify_bridge, nginx):
    return notify_bridge(plain_backend(nginx.address("xff")), client_address_header="X-Forwarded-For",
                         allow_sources=[f"{GATEWAY}/32"],
                         limits={"header_timeout": f"{HEADER_TIMEOUT:g}s", "idle_timeout": "30s",
                                 "drain_timeout": "2s"})


def read_until_closed_or(sock, deadline: float, *, trickle: bytes = b"", every: float = 0.5) -> tuple[bytes, bool]:
    """Reads (sending the next byte of `trickle` every `every` s) until the peer closes or `deadline`; returns
    (bytes read, closed). Stops early once a whole response head has arrived."""
    data, sent, closed = bytearray(), 0, False
    next_send = time.monotonic()
    while time.monotonic() < deadline and b"\r\n\r\n" not in data:
        now = time.monotonic()
        if sent < len(trickle) and now >= next_send:
            try:
                sock.sendall(trickle[sent:sent + 1])
            except (ssl.SSLError, OSError):
                closed = True
                break
            sent += 1
            next_send = now + every
        sock.settimeout(max(0.01, min(deadline, next_send if sent < len(trickle) else deadline) - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except (socket.timeout, TimeoutError):
            continue
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return bytes(data), closed


def test_a_head_trickled_a_byte_at_a_time_gets_408_within_header_timeout(notify_bridge, nginx, inbound_pki):
    b = timing_bridge(notify_bridge, nginx)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"), source=GATEWAY) as s:
        start = time.monotonic()
        answer, closed = read_until_closed_or(s, start + HEADER_TIMEOUT + GRACE,
                                              trickle=notification(FIRST_SPOOFS, close=True))
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), \
        (f"a head trickled at 2 bytes/s for {elapsed:.1f} s (header_timeout {HEADER_TIMEOUT:g} s) got "
         f"{answer[:120]!r}, connection {'closed' if closed else 'still open'}")
    record = b.wait_record(timeout=5)
    assert record["close"] == "header_timeout" and record["downstream"]["http_status"] == 408, record
    assert record["backend"]["client_address_header"] == "X-Forwarded-For", record["backend"]


def test_a_peer_silent_after_its_handshake_is_closed_by_header_timeout(notify_bridge, nginx, inbound_pki):
    b = timing_bridge(notify_bridge, nginx)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"), source=GATEWAY) as s:
        start = time.monotonic()
        answer, closed = read_until_closed_or(s, start + HEADER_TIMEOUT + GRACE)
        elapsed = time.monotonic() - start
        if answer and not closed:  # a 408 came first: the close follows it
            rest, closed = read_until_closed_or(s, time.monotonic() + GRACE)
            answer += rest
    assert closed, (f"a peer silent after its TLS handshake was still connected after {elapsed:.1f} s "
                    f"(header_timeout {HEADER_TIMEOUT:g} s, idle_timeout 30 s), read {answer[:120]!r}")
    assert elapsed <= HEADER_TIMEOUT + GRACE and (not answer or answer.startswith(b"HTTP/1.1 408")), \
        (elapsed, answer[:200])
    record = b.wait_record(timeout=5)
    assert record["close"] == "header_timeout", record
