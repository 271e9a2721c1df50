"""Session records and the bridge's own log never contain payload, even at debug level."""

from __future__ import annotations

import base64

from support.bridge import recv_exact

MARKER = b"PAYLOAD-MARKER-7f3a9c-4111111111111111"


def test_payload_never_appears_in_the_session_log_or_stderr(upstream, bridge):
    server = upstream()
    b = bridge(server.address, level="debug")
    reply_marker = MARKER.replace(b"PAYLOAD", b"SECOND")
    with b.connect() as s:
        s.sendall(b"ECHO %d\n" % (len(MARKER) + len(reply_marker)) + MARKER)
        assert recv_exact(s, len(MARKER)) == MARKER
        s.sendall(reply_marker)
        assert recv_exact(s, len(reply_marker)) == reply_marker
    assert b.wait_record()["bytes"]["down"] == len(MARKER) + len(reply_marker)
    b.stop()
    logs = {
        "session log": b.session_log.read_bytes(),
        "stderr": b.stderr_path.read_bytes(),
        "stdout": b.stdout_path.read_bytes(),
    }
    for name, text in logs.items():
        for marker in (MARKER, reply_marker):
            for form in (marker, marker.hex().encode(), base64.b64encode(marker)):
                assert form not in text, f"payload ({form[:20]!r}...) found in the bridge's {name}"
            assert b"4111111111111111" not in text, f"card-number-like payload found in {name}"
