"""accept = "http-proxy" with `proxy_auth` (a file of user:password lines): Basic credentials are required on every
request; missing or wrong → 407 with `Proxy-Authenticate: Basic realm="tls-bridge"`, nothing dialled; the right
ones (curl --proxy-user) work for CONNECT and absolute-form, and `Proxy-Authorization` never reaches the gateway.
The password never appears in the session log or stderr."""

from __future__ import annotations

import pytest

from support.legacy import SANDBOX
from support.proxy import (PROXY_AUTH_PASSWORD, PROXY_AUTH_USER, SockReader, assert_bridge_error,
                           assert_refusal_record, basic, bridge_answer, curl, legacy_curl_flags, open_proxy,
                           read_response, request_bytes, write_auth_file)

REALM = 'Basic realm="tls-bridge"'


@pytest.fixture
def auth_bridge(proxy_bridge, http_gateway, tmp_path):
    gw = http_gateway("gw")
    users = write_auth_file(tmp_path / "proxy-users.txt", {"someone": "else-entirely", PROXY_AUTH_USER:
                                                          PROXY_AUTH_PASSWORD})
    return proxy_bridge(gw, proxy_auth=str(users), level="debug"), gw


CASES = [
    ("missing", []),
    ("wrong-password", [("Proxy-Authorization", basic(PROXY_AUTH_USER, "wrong"))]),
    ("unknown-user", [("Proxy-Authorization", basic("nobody", PROXY_AUTH_PASSWORD))]),
    ("other-users-password", [("Proxy-Authorization", basic(PROXY_AUTH_USER, "else-entirely"))]),
    ("not-basic", [("Proxy-Authorization", "Bearer " + PROXY_AUTH_PASSWORD)]),
    ("garbage-base64", [("Proxy-Authorization", "Basic !!!not-base64!!!")]),
    ("credentials-in-authorization-not-proxy-authorization",
     [("Authorization", basic(PROXY_AUTH_USER, PROXY_AUTH_PASSWORD))]),
]


def test_missing_or_wrong_credentials_get_407_and_nothing_is_dialled(auth_bridge):
    """Every case, CONNECT and absolute-form, on one bridge; mismatches are collected so one run shows them all."""
    b, gw = auth_bridge
    problems, count = [], 0
    for case, headers in CASES:
        for method in ("CONNECT", "GET"):
            target = f"{SANDBOX}:443" if method == "CONNECT" else f"http://{SANDBOX}/pay"
            try:
                resp, closed = bridge_answer(b, request_bytes(method, target, [("Host", SANDBOX)] + headers))
                count += 1
                assert_bridge_error(resp, closed, 407)
                assert resp.header("proxy-authenticate") == REALM, resp.headers
                assert_refusal_record(b.wait_records(count)[count - 1], 407)
            except (AssertionError, OSError, EOFError) as exc:
                problems.append(f"{case} {method}: {type(exc).__name__}: {str(exc)[:400]}")
    assert not problems, "\n".join(problems)
    gw.assert_not_dialled()


def test_curl_with_the_right_credentials_tunnels(auth_bridge, legacy_pki, tmp_path):
    b, gw = auth_bridge
    out = tmp_path / "out"
    result = curl(b, "--proxy-user", f"{PROXY_AUTH_USER}:{PROXY_AUTH_PASSWORD}", *legacy_curl_flags(legacy_pki),
                  "-H", "Expect:", "--data-binary", "amount=1", "-o", str(out), "-w", "%{http_code}",
                  f"https://{SANDBOX}/echo")
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_bytes() == b"amount=1"
    (req,) = gw.wait_finished(1)[0].requests
    assert "proxy-authorization" not in req.names()
    record = b.wait_record()
    assert record["downstream"]["http_status"] == 200 and record["downstream"]["connect"] == f"{SANDBOX}:443"
    assert_secret_not_logged(b)


def test_curl_without_credentials_sees_407(auth_bridge, legacy_pki):
    b, gw = auth_bridge
    result = curl(b, *legacy_curl_flags(legacy_pki), "-o", "/dev/null", "-w", "%{http_connect}",
                  f"https://{SANDBOX}/echo")
    assert result.returncode != 0 and result.stdout == b"407", (result.stdout, result.stderr)
    gw.assert_not_dialled()


def test_absolute_form_with_the_right_credentials_forwards_without_proxy_authorization(auth_bridge, tmp_path):
    b, gw = auth_bridge
    out = tmp_path / "out"
    result = curl(b, "-U", f"{PROXY_AUTH_USER}:{PROXY_AUTH_PASSWORD}", "-o", str(out), "-w", "%{http_code}",
                  f"http://{SANDBOX}/a", timeout=30)
    assert result.stdout == b"200", (result.stdout, result.stderr)
    (req,) = gw.wait_finished(1)[0].requests
    assert req.target == "/a"
    assert not [n for n in req.names() if n.startswith("proxy-")], req.headers
    assert_secret_not_logged(b)


def test_every_request_on_a_keep_alive_connection_needs_credentials(auth_bridge):
    b, gw = auth_bridge
    with open_proxy(b) as sock:
        reader = SockReader(sock)
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/first", [
            ("Host", SANDBOX), ("Proxy-Authorization", basic(PROXY_AUTH_USER, PROXY_AUTH_PASSWORD))]))
        assert read_response(reader).status == 200
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/second", [("Host", SANDBOX)]))
        second = read_response(reader)
    assert second.status == 407, f"a second request without credentials was forwarded: {second}"
    assert [r.target for r in gw.requests()] == ["/first"]


def assert_secret_not_logged(b) -> None:
    b.stop()
    token = basic(PROXY_AUTH_USER, PROXY_AUTH_PASSWORD).split()[1]
    for name, path in (("session log", b.session_log), ("stderr", b.stderr_path), ("stdout", b.stdout_path)):
        text = path.read_text(errors="replace") if path.exists() else ""
        assert PROXY_AUTH_PASSWORD not in text and token not in text, f"the proxy password is in the {name}"
