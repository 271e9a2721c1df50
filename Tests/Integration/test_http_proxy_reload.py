"""A SIGHUP reload reaches connections that are already open on an http-proxy listener: the next request on a
keep-alive connection for another host is routed by the reloaded config (a dropped route answers 403), and a
listener the reload removed answers 503 and closes; each refusal has its record and no gateway is dialled."""

from __future__ import annotations

from support.bridge import free_port, reload_with, wait_closed
from support.legacy import SANDBOX
from support.proxy import LISTENER, MODULE_ROUTE, SockReader, open_proxy, read_response, request_bytes


def first_request(sock) -> SockReader:
    reader = SockReader(sock)
    sock.sendall(request_bytes("GET", f"http://{SANDBOX}/a", [("Host", SANDBOX)]))
    resp = read_response(reader)
    assert resp.status == 200 and resp.header("x-gateway") == "gw", resp
    return reader


def test_a_route_dropped_by_a_reload_is_refused_on_an_open_keep_alive_connection(proxy_bridge, http_gateway):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    with open_proxy(b) as sock:
        reader = first_request(sock)
        config = dict(b.config, listener=[dict(b.config["listener"][0], routes={SANDBOX: "gw"})])
        reload_with(b, config)
        sock.sendall(request_bytes("GET", f"http://{MODULE_ROUTE}/c", [("Host", MODULE_ROUTE)]))
        resp = read_response(reader)
        assert resp.status == 403, f"the dropped route still went through: {resp}"
        assert MODULE_ROUTE in resp.text, resp.text
        assert wait_closed(sock, 10)[0] == b""
    assert gw2.requests() == [], "the gateway of the dropped route was dialled"
    records = b.wait_records(2)
    refused = [r for r in records if r["downstream"].get("http_status") == 403]
    assert len(refused) == 1, records
    assert refused[0]["close"] == "refused" and MODULE_ROUTE in refused[0]["error"], refused[0]
    assert refused[0]["listener"] == LISTENER, refused[0]


def test_a_route_kept_by_a_reload_still_works_on_an_open_keep_alive_connection(proxy_bridge, http_gateway):
    """The control: the same hand-over with the route still in the reloaded config goes through."""
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    with open_proxy(b) as sock:
        reader = first_request(sock)
        config = dict(b.config, limits=dict(b.config["limits"], idle_timeout="200s"))
        reload_with(b, config)
        sock.sendall(request_bytes("GET", f"http://{MODULE_ROUTE}/c", [("Host", MODULE_ROUTE)]))
        resp = read_response(reader)
        assert resp.status == 200 and resp.header("x-gateway") == "gw2", resp
    assert [r.target for r in gw2.requests()] == ["/c"]


def test_a_listener_removed_by_a_reload_answers_503_on_its_open_keep_alive_connection(proxy_bridge, http_gateway):
    gw, gw2 = http_gateway("gw"), http_gateway("gw2")
    b = proxy_bridge(gw, gw2)
    with open_proxy(b) as sock:
        reader = first_request(sock)
        other = {"name": "plain", "listen": f"127.0.0.1:{free_port()}", "accept": "plain", "upstream": "gw"}
        reload_with(b, dict(b.config, listener=[other]))
        sock.sendall(request_bytes("GET", f"http://{MODULE_ROUTE}/c", [("Host", MODULE_ROUTE)]))
        resp = read_response(reader)
        assert resp.status == 503, resp
        assert LISTENER in resp.text and "reload" in resp.text, resp.text
        assert wait_closed(sock, 10)[0] == b""
    assert gw2.requests() == [], "a request on a removed listener was forwarded"
    records = b.wait_records(2)
    refused = [r for r in records if r["close"] == "refused"]
    assert len(refused) == 1 and refused[0]["listener"] == LISTENER, records
    assert "removed" in refused[0]["error"] and refused[0]["downstream"]["http_status"] == 503, refused[0]
