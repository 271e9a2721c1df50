"""Real old clients, by their recorded ClientHellos: testssl.sh (Debian) replays ~160 clients' handshakes against
a default legacy `tls` listener (`min_version = "TLS1.0"`, no `ciphers` key). Every client that offers an AES suite
must connect; only clients with nothing but 3DES/RC4 (which Debian's OpenSSL lacks) may not. Java 6u45 (which
cannot complete a DH group over 1024 bits) and OpenSSL 0.9.8y (an SSLv2-format ClientHello) are named: they are
the merchants' stacks. No client is given DHE, whose 2048-bit group they may not handle.

Slow (about 90 s: one testssl run); skipped when testssl.sh is not installed (scripts/setup --test installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from support.legacy import SANDBOX, merchant_upstream, tls_listener

CLIENT_TABLE = "/etc/testssl/client-simulation.txt"

pytestmark = pytest.mark.skipif(shutil.which("testssl") is None or not os.path.exists(CLIENT_TABLE),
                                reason="testssl.sh is not installed (scripts/setup --test installs it)")


def clients_offering_aes() -> dict[str, bool]:
    """Each client in testssl's table, and whether its recorded cipher list has an AES suite."""
    text = open(CLIENT_TABLE, encoding="utf-8").read()
    names = re.findall(r'^\s*names\+=\("(.*)"\)', text, re.M)
    ciphers = re.findall(r'^\s*ciphers\+=\("(.*)"\)', text, re.M)
    assert len(names) == len(ciphers) and len(names) > 100, (len(names), len(ciphers))
    return {name: "AES" in cipher_list for name, cipher_list in zip(names, ciphers)}


def simulate(port: int) -> dict[str, str]:
    """testssl's client simulation against 127.0.0.1:port: client name → what it negotiated (or No connection)."""
    env = dict(os.environ, ALL_CLIENTS="true")
    result = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "-c", "--ip", "127.0.0.1",
                             f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=400, env=env,
                            stdin=subprocess.DEVNULL)
    outcomes = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^ (\S.{27}\S?)\s+(No connection|(?:SSLv\d|TLSv1(?:\.\d)?)\s.*)$", line)
        if match:
            outcomes[match.group(1).strip()] = match.group(2).strip()
    assert len(outcomes) > 100, f"testssl printed too few client lines:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    return outcomes


def test_every_recorded_client_that_offers_aes_connects_to_a_default_legacy_listener(bridge, pki, legacy_pki):
    b = bridge("127.0.0.1:9", upstream=merchant_upstream(pki),
               listener=tls_listener(legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"}))
    outcomes = simulate(b.listen[1])
    offers_aes = clients_offering_aes()
    refused = sorted(name for name, outcome in outcomes.items() if outcome == "No connection")
    must_connect = [name for name in refused if offers_aes.get(name, True)]
    assert not must_connect, f"clients that offer AES got no connection: {must_connect}"
    assert outcomes.get("Java 6u45", "").startswith("TLSv1.0 AES"), outcomes.get("Java 6u45")
    assert outcomes.get("OpenSSL 0.9.8y", "").startswith("TLSv1.0 AES"), outcomes.get("OpenSSL 0.9.8y")
    given_dhe = {name: outcome for name, outcome in outcomes.items() if " DHE-" in f" {outcome}"}
    assert not given_dhe, f"clients given a DHE suite: {given_dhe}"
