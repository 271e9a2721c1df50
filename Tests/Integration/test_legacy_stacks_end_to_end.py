"""The merchants' stacks, end to end (issue #15, item 4): PHP/curl on OpenSSL 0.9.8, Java 6, Java 7 and .NET on
Windows Server 2008 (SChannel) each connect with TLS 1.0 to a default legacy `tls` listener
(`min_version = "TLS1.0"`, no `ciphers` key), and the bridge carries 256 KiB each way to a TLS 1.2-only gateway
that requires the merchant's client certificate. The session record names what the stack offered and the
suite the default policy chose for it.

Each stack is played by this machine's `openssl s_client` (OpenSSL 3) from testssl.sh's record of that client
(`/etc/testssl/client-simulation.txt`, see `support/recorded_clients.py`):

- faithful: TLS 1.0 only; the recorded cipher suites in the recorded order, less those this OpenSSL lacks
  (3DES, RC4, DES, IDEA, export: it is built without them, so the stack's AES suites are what can be chosen
  anyway); SNI only where the stack sends it (not Java 6); session ticket only where it sends one (OpenSSL
  0.9.8); status_request where it sends one (SChannel); the supported groups in its order (Java 7's 25 named
  curves, binary ones included); no extended_master_secret and no encrypt_then_mac (none of them sends one:
  EMS is turned off through OPENSSL_CONF, s_client has no flag for it). Java 6 sends no extension at all.
  `test_the_client_offers_what_the_recorded_stack_offers` checks this against the recorded bytes.
- not faithful: Java 6u45 sends an SSLv2-compatible ClientHello record, OpenSSL 3 cannot (that format is
  covered by testssl's byte-exact replay in `test_tls_listener_client_simulation.py`, which stops after the
  ServerHello); SChannel sends an empty renegotiation_info extension where OpenSSL sends the equivalent
  SCSV; OpenSSL lists three ec_point_formats where Java 7 and SChannel list one; extension order, random,
  and everything after the ClientHello (key exchange, Finished, records) is OpenSSL 3's, not the stack's.
  Java 6 and 7 limits the server must respect (no DH group over 1024 bits) are checked by the choice: no
  DHE is chosen for anyone.

".NET on Windows Server 2008" is played twice: testssl's "IE 7 Vista" (Server 2008 shares Vista's SChannel)
and "IE 8 Win 7" (Server 2008 R2's). Skipped when testssl.sh is not installed (scripts/setup --test).
"""

from __future__ import annotations

import hashlib
import os
import ssl
from dataclasses import dataclass

import pytest

from support import recorded_clients
from support.certs import MERCHANT_CN
from support.legacy import SANDBOX, check_tls_record, merchant_upstream, s_client, tls_listener
from support.recorded_clients import (EXT_EC_POINT_FORMATS, EXT_RENEGOTIATION_INFO, EXT_SUPPORTED_GROUPS, SCSV,
                                      capture_hello, client_env, openssl_cipher_codes, recorded_client)
from support.servers import generated_chunks, generated_digest

pytestmark = pytest.mark.skipif(not recorded_clients.available(),
                                reason="testssl.sh is not installed (scripts/setup --test installs it)")

SIZE = 256 * 1024


@dataclass(frozen=True)
class Stack:
    merchant: str     # what the merchant runs
    client: str       # testssl.sh's name for the recorded client that plays it
    chosen: str       # the suite the default legacy policy must choose for it
    sslv2_hello: bool = False  # the real stack sends an SSLv2-format ClientHello (OpenSSL 3 cannot)


STACKS = [
    # offers DHE-RSA-AES256-SHA first; no ECDHE: the policy's first RSA-key-exchange AES suite it has
    Stack("PHP/curl on OpenSSL 0.9.8", "OpenSSL 0.9.8y", "AES256-SHA"),
    # AES128-SHA and DHE-*-AES128-SHA only, no ECDHE, no DH group over 1024 bits: RSA key exchange
    Stack("Java 6", "Java 6u45", "AES128-SHA", sslv2_hello=True),
    # ECDHE-RSA-AES128-SHA is the only ECDHE suite with RSA authentication it offers
    Stack("Java 7", "Java 7u25", "ECDHE-RSA-AES128-SHA"),
    # SChannel lists AES128-SHA first; the server's order puts ECDHE (and AES-256 within it) ahead
    Stack(".NET on Windows Server 2008", "IE 7 Vista", "ECDHE-RSA-AES256-SHA"),
    Stack(".NET on Windows Server 2008 R2", "IE 8 Win 7", "ECDHE-RSA-AES256-SHA"),
]
IDS = [s.client.replace(" ", "-") for s in STACKS]


@pytest.fixture
def gateway(upstream):
    """A TLS-1.2-only gateway that requires the merchant's client certificate (asyncio: speaks DUPLEX)."""
    return upstream(client_auth="required", max_version=ssl.TLSVersion.TLSv1_2, name="gw")


@pytest.mark.parametrize("stack", STACKS, ids=IDS)
def test_the_client_offers_what_the_recorded_stack_offers(stack, tmp_path):
    """The test client's ClientHello against the recorded one (no bridge): same version, same suites in the
    same order (less what this OpenSSL lacks), same extensions but for the named differences."""
    client = recorded_client(stack.client)
    recorded = client.hello
    assert recorded.format == ("sslv2" if stack.sslv2_hello else "tls"), recorded.format
    ours = capture_hello(client.s_client_args(SANDBOX), client_env(client, tmp_path, os.environ))
    assert ours.format == "tls" and ours.version == recorded.version == 0x0301, (ours.format, hex(ours.version))
    have = set(openssl_cipher_codes().values())
    expected_suites = [s for s in recorded.suites if s in have and s != SCSV]
    assert [s for s in ours.suites if s != SCSV] == expected_suites, \
        ([hex(s) for s in ours.suites], [hex(s) for s in recorded.suites])
    assert expected_suites, f"{stack.client}: none of its suites exists in this OpenSSL"
    # secure renegotiation: signalled by the SCSV (OpenSSL, Java) or the empty extension (SChannel)
    assert SCSV in ours.suites and (SCSV in recorded.suites or EXT_RENEGOTIATION_INFO in recorded.extensions)
    assert set(ours.extensions) == set(recorded.extensions) - {EXT_RENEGOTIATION_INFO}, \
        (list(ours.extensions), list(recorded.extensions))
    if EXT_SUPPORTED_GROUPS in recorded.extensions:
        assert ours.extensions[EXT_SUPPORTED_GROUPS] == recorded.extensions[EXT_SUPPORTED_GROUPS]
    if EXT_EC_POINT_FORMATS in recorded.extensions:
        assert ours.extensions[EXT_EC_POINT_FORMATS][1] == recorded.extensions[EXT_EC_POINT_FORMATS][1] == 0, \
            "uncompressed points first"


@pytest.mark.parametrize("stack", STACKS, ids=IDS)
def test_stack_reaches_the_tls12_gateway_through_a_default_legacy_listener(bridge, pki, legacy_pki, gateway,
                                                                           stack, tmp_path):
    client = recorded_client(stack.client)
    offered = client.playable_ciphers
    b = bridge(gateway.address, upstream=merchant_upstream(pki),
               listener=tls_listener(legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"}))
    seed = 150 + STACKS.index(stack)
    payload = b"".join(generated_chunks(seed + 1, SIZE))
    result = s_client(b.listen[1], *client.s_client_args(SANDBOX), "-CAfile", str(legacy_pki.listener_ca),
                      "-verify_return_error", stdin=f"DUPLEX {SIZE} {SIZE} {seed}\n".encode() + payload,
                      env=client_env(client, tmp_path, os.environ))
    stderr = result.stderr.decode(errors="replace")
    assert len(result.stdout) == SIZE, (len(result.stdout), stderr[-1500:])
    assert hashlib.sha256(result.stdout).hexdigest() == generated_digest(seed, SIZE), "gateway → merchant differ"

    conn = gateway.wait_finished(1)[0]
    assert conn.received_digest == hashlib.sha256(payload).hexdigest(), "merchant → gateway differ"
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN, conn

    record = b.wait_record()
    check_tls_record(record)
    assert record["error"] is None and record["hint"] is None, record
    ds, up = record["downstream"], record["upstream"]
    assert ds["protocol"] == "TLSv1", ds
    assert ds["cipher"] == stack.chosen, f"{stack.merchant} ({stack.client}) was given {ds['cipher']}: {ds}"
    assert "DHE-" not in ds["cipher"].replace("ECDHE-", ""), ds
    sends_sni = recorded_clients.EXT_SERVER_NAME in client.hello.extensions
    assert ds["sni"] == (SANDBOX if sends_sni else None), ds
    assert ds["offered"]["max_version"] == "TLSv1" and ds["offered"]["sni"] == ds["sni"], ds["offered"]
    named = [c for c in ds["offered"]["ciphers"] if "SCSV" not in c.upper()]  # the record keeps the first 12
    assert named == offered[:12], f"the record names {ds['offered']['ciphers']}, the client offered {offered}"
    assert stack.chosen in named, ds["offered"]
    assert up["protocol"] in ("TLSv1.2", "TLSv1.3") and up["name"] == "gw", up
    assert f"CN={MERCHANT_CN}" in (up["client_cert"] or ""), up
    assert record["bytes"] == {"up": len(f"DUPLEX {SIZE} {SIZE} {seed}\n") + SIZE, "down": SIZE}, record["bytes"]
