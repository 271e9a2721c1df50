"""Payment notices are payload: neither the notification nor the merchant's answer appears in the session log,
stderr or stdout, even at debug level, whatever the backend's transport."""

from __future__ import annotations

import base64

import pytest

from support.inbound import (gateway_context, http_request, legacy_backend, plain_backend, post)

CARD = b"4111111111111111"
MARKER = b"NOTICE-PRIVATE-5d1e8b-" + CARD


@pytest.mark.parametrize("kind", ["plain", "legacy-pin"])
def test_notification_never_appears_in_the_logs(notify_bridge, backend_server, inbound_pki, kind):
    server = backend_server("pin" if kind == "legacy-pin" else None)
    entry = (legacy_backend(server.address, inbound_pki, variant="pin") if kind == "legacy-pin"
             else plain_backend(server.address))
    b = notify_bridge(entry, level="debug", proxy_protocol="v1")
    body = b"trading_id=ORD-9&card=" + MARKER + b"&status=40"
    resp, _ = post(b.listen, gateway_context(inbound_pki, "TLSv1.2"), "/echo", body)
    assert resp.body == body, "the echoed notice differs"
    record = b.wait_record()
    assert record["error"] is None and record["bytes"]["up"] == len(http_request("/echo", body)), record
    b.stop()
    logs = {"session log": b.session_log.read_bytes(), "stderr": b.stderr_path.read_bytes(),
            "stdout": b.stdout_path.read_bytes()}
    for name, text in logs.items():
        for form in (MARKER, MARKER.hex().encode(), base64.b64encode(MARKER)):
            assert form not in text, f"payload ({form[:20]!r}...) found in the bridge's {name}"
        assert CARD not in text, f"card-number-like payload found in {name}"
        assert b"trading_id=ORD-9" not in text, f"the notice body found in {name}"
