"""One configuration generation per session: a session reads only the configuration it was accepted under,
from accept to record. A reload that changes an upstream while a merchant's connection is open (accepted,
not yet routed) does not send that connection to the new address; new connections go there."""

from __future__ import annotations

import signal
import time

from support.legacy import SANDBOX
from support.proxy import SockReader, open_proxy, read_response, request_bytes
from support.bridge import to_toml


def test_a_session_routed_after_a_reload_uses_the_configuration_it_was_accepted_under(proxy_bridge, http_gateway):
    old_gw, new_gw = http_gateway("old"), http_gateway("new")
    b = proxy_bridge(old_gw)
    early = open_proxy(b)  # accepted now; its request head comes after the reload

    gw_entry = next(u for u in b.config["upstream"] if u["name"] == "gw")
    gw_entry["address"] = new_gw.address
    b.config_path.write_text(to_toml(b.config))
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while True:  # a new connection tells when the new configuration is in force
        with open_proxy(b) as probe:
            probe.sendall(request_bytes("GET", f"http://{SANDBOX}/which", [("Connection", "close")]))
            answer = read_response(SockReader(probe))
        if answer.header("X-Gateway") == "new":
            break
        assert time.monotonic() < deadline, f"the reload never took effect:\n{b.stderr()[-2000:]}"
        time.sleep(0.1)

    with early:
        early.sendall(request_bytes("GET", f"http://{SANDBOX}/early", [("Connection", "close")]))
        response = read_response(SockReader(early))
    assert response.status == 200, response
    assert response.header("X-Gateway") == "old", (
        "a connection accepted before the reload was routed with the new configuration's upstream address")
    assert "/early" in [r.target for r in old_gw.requests()]
    assert "/early" not in [r.target for r in new_gw.requests()]
