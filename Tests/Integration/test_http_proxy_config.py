"""accept = "http-proxy" configuration: `check` (and `run`) refuse an `upstream` default (the routes are the only
destinations), a listener without routes, route keys with a bad port, a missing proxy_auth file, proxy_auth on
another kind of listener and a bad header_timeout, each naming the key; the sound variants pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bridge import base_config, to_toml
from support.legacy import MODULE, SANDBOX, XP_NOTE, merchant_upstream
from support.proxy import LISTENER, MODULE_ROUTE, proxy_listener, write_auth_file

MISSING = "/nonexistent/tls-bridge-test/proxy-users.txt"
P = f"listener[{LISTENER}]"


def write_config(tmp_path: Path, pki, listener: dict, limits: dict | None = None) -> Path:
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433", upstream=merchant_upstream(pki), limits=limits,
                      extra_upstreams=[{"name": "gw2", "address": "127.0.0.1:4434"}], listener=listener)
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    return path


def assert_refused(result, *needles: str) -> None:
    assert result.returncode != 0, f"accepted a config that must be refused; stdout:\n{result.stdout}"
    assert any(n in result.stderr for n in needles), f"stderr does not name {needles}:\n{result.stderr}"


BAD_PORT_KEYS = [f"{SANDBOX}:99999", f"{SANDBOX}:0", f"{SANDBOX}:https", f"{SANDBOX}:", f"{SANDBOX}:-1"]


def test_upstream_default_on_an_http_proxy_listener_is_refused(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki, upstream="gw"))
    assert_refused(cli("check", "--config", str(path)), f"{P}.upstream")
    assert_refused(cli("run", "--config", str(path)), f"{P}.upstream")


@pytest.mark.parametrize("routes", [None, {}], ids=["no-routes-table", "empty-routes-table"])
def test_http_proxy_listener_without_routes_is_refused(cli, pki, legacy_pki, tmp_path, routes):
    listener = proxy_listener(legacy_pki)
    if routes is None:
        listener["routes"] = None  # removed by base_config
    else:
        listener["routes"] = routes
    path = write_config(tmp_path, pki, listener)
    assert_refused(cli("check", "--config", str(path)), f"{P}.routes")


@pytest.mark.parametrize("key", BAD_PORT_KEYS)
def test_route_key_with_a_bad_port_is_refused_naming_it(cli, pki, legacy_pki, tmp_path, key):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki, routes={key: "gw"}))
    result = cli("check", "--config", str(path))
    assert_refused(result, f"{P}.routes")
    assert key in result.stderr, f"stderr does not name the route key {key!r}:\n{result.stderr}"


def test_route_to_an_unknown_upstream_is_refused(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki, routes={MODULE_ROUTE: "nope"}))
    result = cli("check", "--config", str(path))
    assert_refused(result, f"{P}.routes")
    assert MODULE_ROUTE in result.stderr, result.stderr


def test_missing_proxy_auth_file_is_refused(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki, proxy_auth=MISSING))
    assert_refused(cli("check", "--config", str(path)), f"{P}.proxy_auth")


def test_proxy_auth_on_a_plain_listener_is_refused(cli, pki, legacy_pki, tmp_path):
    users = write_auth_file(tmp_path / "users.txt", {"u": "p"})
    path = write_config(tmp_path, pki, {"proxy_auth": str(users)})  # the base listener: plain
    assert_refused(cli("check", "--config", str(path)), "listener[plain].proxy_auth")


@pytest.mark.parametrize("value", ["banana", "-1s"])
def test_bad_header_timeout_is_refused(cli, pki, legacy_pki, tmp_path, value):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki), limits={"header_timeout": value})
    assert_refused(cli("check", "--config", str(path)), "limits.header_timeout")


def test_accept_mode_error_lists_http_proxy(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki, accept="http_proxy"))
    result = cli("check", "--config", str(path))
    assert_refused(result, f"{P}.accept")
    assert "http-proxy" in result.stderr, result.stderr


VALID = [
    ("mint", lambda lp, t: proxy_listener(lp)),
    ("static-identity", lambda lp, t: proxy_listener(lp, identity="static")),
    ("port-routes-only", lambda lp, t: proxy_listener(lp, routes={MODULE_ROUTE: "gw2", f"{SANDBOX}:443": "gw"})),
    ("ip-literal-route", lambda lp, t: proxy_listener(lp, routes={SANDBOX: "gw", "192.0.2.10:443": "gw2"})),
    ("mixed-case-route", lambda lp, t: proxy_listener(lp, routes={"Sandbox.Paygent.TEST": "gw", MODULE: "gw2"})),
    ("proxy-auth-and-sources", lambda lp, t: proxy_listener(
        lp, proxy_auth=str(write_auth_file(t / "users.txt", {"u": "p"})), allow_sources=["127.0.0.1/32"])),
    ("tls12-floor", lambda lp, t: proxy_listener(lp, min_version="TLS1.2")),
]


@pytest.mark.parametrize("make", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_http_proxy_listener_variants_pass_check(cli, pki, legacy_pki, tmp_path, make):
    path = write_config(tmp_path, pki, make(legacy_pki, tmp_path), limits={"header_timeout": "10s"})
    result = cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr


def test_check_shows_the_proxy_routes(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki))
    result = cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "http-proxy" in out and SANDBOX in out and MODULE_ROUTE in out, out


@pytest.mark.parametrize("min_version, noted", [("TLS1.0", True), ("TLS1.2", False)])
def test_check_says_windows_xp_clients_cannot_use_a_legacy_connect_tunnel(cli, pki, legacy_pki, tmp_path,
                                                                            min_version, noted):
    path = write_config(tmp_path, pki, proxy_listener(legacy_pki, min_version=min_version))
    result = cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert bool(XP_NOTE.search(result.stdout)) == noted, result.stdout
