"""The merchant's server is down (connection refused): the gateway sees a clean close (TLS close_notify or EOF,
no reset, no answer), the record says upstream_error in connect with "refused", the bridge keeps running, and
the next notification is delivered once the server is back on that port."""

from __future__ import annotations

import ssl

from support.inbound import (ack_for, assert_delivered_record, check_inbound_record, contains, form_body,
                             gateway_connect, gateway_context, http_request, legacy_backend, plain_backend, post)
from support.servers import closed_port


def down_record(record: dict, port: int) -> None:
    check_inbound_record(record)
    assert record["backend"]["address"] == f"127.0.0.1:{port}", record["backend"]
    assert record["close"] == "upstream_error", record
    assert record["phase"] == "connect", record
    assert contains(record["error"], "refused"), record["error"]
    assert record["backend"]["protocol"] is None, record["backend"]
    assert record["downstream"]["protocol"] in ("TLSv1.2", "TLSv1.3"), record["downstream"]


def clean_close(b, ipki) -> str:
    """Handshake, then wait for the bridge to end the session. Returns how it ended."""
    with gateway_connect(b.listen, gateway_context(ipki, "TLSv1.2")) as s:
        s.settimeout(10)
        try:
            data = s.recv(1024)
        except ssl.SSLEOFError:
            return "eof"
        except ssl.SSLZeroReturnError:
            return "close_notify"
        except TimeoutError:
            raise AssertionError("the bridge kept the gateway's connection open with its backend down") from None
        assert data == b"", f"the gateway got {data!r} from a bridge whose backend is down"
        return "close_notify"


def test_backend_down_closes_cleanly_and_recovers(notify_bridge, backend_server, inbound_pki):
    port = closed_port()
    b = notify_bridge(plain_backend(f"127.0.0.1:{port}"))
    how = clean_close(b, inbound_pki)
    assert how in ("eof", "close_notify")
    down_record(b.wait_record(), port)
    server = backend_server(port=port)
    body = form_body(2500)
    resp, _ = post(b.listen, gateway_context(inbound_pki, "TLSv1.2"), "/notify", body)
    assert resp.status == 200 and resp.body == ack_for(body)
    assert server.wait_finished(1)[0].body == body
    records = b.wait_records(2)
    assert_delivered_record(records[1], backend_address=server.address, backend_protocol="plain")


def test_notification_sent_to_a_down_backend_gets_no_answer(notify_bridge, inbound_pki):
    """The gateway sends at once (as a real notifier does): no bytes come back and the record says why.
    A reset is tolerated here (data in flight when the bridge closes), not in the test above."""
    port = closed_port()
    b = notify_bridge(legacy_backend(f"127.0.0.1:{port}", inbound_pki, variant="pin"))
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.3")) as s:
        s.sendall(http_request("/notify", form_body(1024)))
        s.settimeout(10)
        try:
            data = s.recv(1024)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError):
            data = b""
    assert data == b""
    down_record(b.wait_record(), port)


def test_repeated_failures_do_not_stop_the_bridge(notify_bridge, backend_server, inbound_pki):
    port = closed_port()
    b = notify_bridge(plain_backend(f"127.0.0.1:{port}"))
    for _ in range(5):
        clean_close(b, inbound_pki)
    for record in b.wait_records(5):
        down_record(record, port)
    assert b.proc.poll() is None, "the bridge exited"
