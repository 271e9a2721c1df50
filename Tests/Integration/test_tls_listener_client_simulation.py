"""Real old clients, by their recorded ClientHellos: testssl.sh (Debian) replays ~160 clients' handshakes
(`ALL_CLIENTS=true testssl -c`) against the three places a merchant or the gateway does TLS with the bridge,
each with its default policy, and the set of clients that get "No connection" must be exactly the expected one:

- a legacy `tls` listener (`min_version = "TLS1.0"`, no `ciphers` key) and the TLS inside a CONNECT tunnel on an
  `http-proxy` listener (minted identity, `min_version = "TLS1.0"`): only the clients that offer no AES at all
  (Debian's OpenSSL has no 3DES and no RC4, so nothing is left to agree on);
- the notification listener's default (TLS 1.2 floor, forward-secret AEAD suites only): every client that cannot
  do TLS 1.2 with ECDHE/DHE-RSA and AES-GCM or ChaCha20.

Java 6u45 (an SSLv2-format ClientHello, and no DH group over 1024 bits) and OpenSSL 0.9.8y (recorded by testssl
with SSLv2 off: a TLS 1.0 hello with SNI) are named on the legacy sides: they are the merchants' stacks. No legacy client is given DHE, whose 2048-bit group
they may not handle.

Slow: one testssl run takes 90-130 s alone, so one module fixture starts the three at once and the tests read its
results. Measured on two cores shared with other builds (load average 6-8): 200-275 s for the three together,
against 131 s for one alone (so ~390 s one after another).
Skipped when testssl.sh is not installed (scripts/setup --test installs it). scripts/sanitize runs them too, on
purpose: ~500 recorded hellos, SSLv2 format included, through the bridge's ClientHello summary under ASan.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import inbound
from support.bridge import Bridge, base_config
from support.legacy import SANDBOX, merchant_upstream, tls_listener
from support.proxy import ConnectRelay, proxy_config_kwargs

CLIENT_TABLE = "/etc/testssl/client-simulation.txt"
# All three runs share two cores (and the machine may be busy with other builds): generous, but bounded.
SIMULATION_TIMEOUT = 600.0
# 127.0.0.1:9 (discard): nothing listens there, so a session that gets through its handshake ends at the dial;
# testssl only needs the handshake.
NOWHERE = "127.0.0.1:9"

pytestmark = pytest.mark.skipif(shutil.which("testssl") is None or not os.path.exists(CLIENT_TABLE),
                                reason="testssl.sh is not installed (scripts/setup --test installs it)")

# --- the expected "No connection" sets ----------------------------------------------------------------------------

# Legacy sides (tls listener, CONNECT tunnel): the clients that offer no AES suite at all. Each offers only 3DES,
# RC4, single DES, RC2 or export suites, and Debian's OpenSSL is built without 3DES and RC4. IE 6 XP and
# YandexBot 3.0 also stop at SSLv3. Windows XP / Server 2003 SChannel is what these are; `check` tells the
# operator to point them at a plain listener.
LEGACY_NO_CONNECTION = {"IE 6 XP", "IE 8 XP", "YandexBot 3.0"}

# Notification listener, group 1: the newest protocol they offer is below TLS 1.2, the listener's floor.
NOTIFY_SSL3_ONLY = {"IE 6 XP", "YandexBot 3.0"}
NOTIFY_TLS10_AT_MOST = {
    "Android 2.3.7", "Android 4.0.4", "Android 4.1.1", "Android 4.2.2", "Android 4.3",
    "Firefox 10.0.12 ESR Win 7", "Firefox 17.0.7 ESR Win 7", "Firefox 21 Fedora 19", "Firefox 21 Win 7",
    "Firefox 22 Win 7", "Firefox 24.2.0 ESR Win 7", "Firefox 24 Win 7", "Firefox 26 Win 8",
    "IE 7 Vista", "IE 8-10 Win 7", "IE 8 Win 7", "IE 8 XP", "IE 9 Win 7", "IE 10 Win Phone 8.0",
    "Opera 12.15 Win 7", "Safari 5.1.9 OS X 10.6.8", "Safari 6.0.4 OS X 10.8.4", "Tor 17.0.9 Win 7",
    "Java 6u45", "Java 7u25", "OpenSSL 0.9.8y",
    "Baidu Jan 2015", "BingBot Dec 2013", "BingPreview Dec 2013", "BingPreview Jun 2014", "Googlebot Jun 2014",
    "Googlebot Oct 2013", "Yahoo Slurp Oct 2013", "YandexBot May 2014",
}
NOTIFY_TLS11_AT_MOST = {"Chrome 27 Win 7", "Chrome 28 Win 7", "Chrome 29 Win 7", "Opera 15 Win 7", "Opera 16 Win 7"}
# Group 2: TLS 1.2, but no suite the default allows: they offer CBC suites only (the default has AES-GCM and
# ChaCha20 only), and IE 11 on Windows Phone 8.1 offers GCM only with ECDSA, which an RSA certificate cannot use.
NOTIFY_TLS12_WITHOUT_AEAD_FOR_RSA = {
    "Chrome 30 Win 7", "IE 11 Win Phone 8.1", "Opera 17 Win 7", "Safari 5 iOS 5.1.1", "Safari 6 iOS 6.0.1",
    "Safari 7 iOS 7.1", "Safari 7 OS X 10.9", "Safari 8 iOS 8.0 Beta", "Safari 8 iOS 8.4", "Safari 8 OS X 10.10",
}
# No client that reaches TLS 1.2 with an allowed suite fails on the DH group or the curve: none that offers
# DHE-AEAD caps the group below the 2048 bits OpenSSL picks, and every ECDHE client offers P-256 or X25519.
NOTIFY_NO_CONNECTION = (NOTIFY_SSL3_ONLY | NOTIFY_TLS10_AT_MOST | NOTIFY_TLS11_AT_MOST
                        | NOTIFY_TLS12_WITHOUT_AEAD_FOR_RSA)

# What the notify listener's default accepts at TLS 1.2 (Config.swift, DownstreamTLSConfig.modernCiphers) with
# its RSA certificate: (EC)DHE with RSA authentication and an AEAD cipher.
RSA_FORWARD_SECRET_AEAD = re.compile(r"^(ECDHE-RSA|DHE-RSA)-(AES\d+-GCM|CHACHA20)")


@dataclass(frozen=True)
class RecordedClient:
    name: str
    ciphers: list[str]        # OpenSSL names of the suites up to TLS 1.2, as recorded
    tls13_suites: str          # empty when the client has no TLS 1.3
    highest_protocol: int      # 0x0300 = SSLv3 ... 0x0304 = TLS 1.3


def client_table() -> dict[str, RecordedClient]:
    """testssl's table of recorded clients (one `names+=(...)` entry per client, fields in parallel arrays)."""
    text = open(CLIENT_TABLE, encoding="utf-8").read()

    def field(name: str) -> list[str]:
        return re.findall(rf'^\s*{name}\+=\("(.*)"\)', text, re.M)

    names, ciphers, suites, highest = field("names"), field("ciphers"), field("ciphersuites"), \
        field("highest_protocol")
    assert len(names) > 100 and len({len(names), len(ciphers), len(suites), len(highest)}) == 1, \
        (len(names), len(ciphers), len(suites), len(highest))
    return {n: RecordedClient(n, c.split(":"), s, int(h, 16)) for n, c, s, h in zip(names, ciphers, suites, highest)}


# --- running the simulations ------------------------------------------------------------------------------------

@dataclass
class Simulation:
    outcomes: dict[str, str]   # client name → "TLSv1.0 AES128-SHA, No FS" ... or "No connection"
    records: list[dict]        # the bridge's session records
    crashed: int | None        # the bridge's exit code if it ended on its own
    output: str                # the tail of testssl's stdout and stderr, for failure messages

    def refused(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome == "No connection"}


def parse_client_lines(stdout: str) -> dict[str, str]:
    outcomes = {}
    for line in stdout.splitlines():
        match = re.match(r"^ (\S.{27}\S?)\s+(No connection|(?:SSLv\d|TLSv1(?:\.\d)?)\s.*)$", line)
        if match:
            outcomes[match.group(1).strip()] = match.group(2).strip()
    return outcomes


def start_testssl(target: str, workdir: Path) -> tuple[subprocess.Popen, Path, Path]:
    """testssl's client simulation of every recorded client against `target` (host:port, the host only for SNI:
    `--ip` pins the address and `--nodns none` keeps testssl from asking any name server)."""
    out, err = workdir / "testssl.stdout", workdir / "testssl.stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(["testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                                 "-c", "--ip", "127.0.0.1", target],
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=workdir,
                                env=dict(os.environ, ALL_CLIENTS="true"),
                                start_new_session=True)  # its own group: a timeout ends its openssl children too
    return proc, out, err


def wait_testssl(proc: subprocess.Popen, deadline: float) -> None:
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group of the process started above, nothing else
        proc.wait(timeout=10)


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture(scope="module")
def simulations(bridge_bin, pki, legacy_pki, inbound_pki, tmp_path_factory):
    """The three simulations, run at once: "tls", "proxy" (through a ConnectRelay), "notify". Also "relay"."""
    root = tmp_path_factory.mktemp("client-simulation")
    dirs = {name: root / name for name in ("tls", "proxy", "notify")}
    for d in dirs.values():
        d.mkdir()
    configs = {
        "tls": base_config(pki, dirs["tls"], NOWHERE, upstream=merchant_upstream(pki),
                           listener=tls_listener(legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"})),
        # the Mint CA identity and min_version TLS1.0 (support/proxy.py's proxy_listener)
        "proxy": base_config(pki, dirs["proxy"], NOWHERE, **proxy_config_kwargs(pki, legacy_pki, NOWHERE)),
        # the notify listener with no TLS keys but its identity: the defaults under test
        "notify": inbound.inbound_config(dirs["notify"], [inbound.plain_backend(NOWHERE)],
                                         [inbound.notify_listener(inbound_pki)]),
    }
    bridges: dict[str, Bridge] = {}
    relay = None
    runs = {}
    try:
        for name, cfg in configs.items():
            bridges[name] = Bridge(bridge_bin, dirs[name], cfg).start()
        relay = ConnectRelay(bridges["proxy"].listen, f"{SANDBOX}:443").start()
        started = time.monotonic()
        runs = {
            # no SNI (an IP): the listener's default route
            "tls": start_testssl(f"127.0.0.1:{bridges['tls'].listen[1]}", dirs["tls"]),
            # SNI = the CONNECT host, as a merchant's client going through a proxy sends it
            "proxy": start_testssl(f"{SANDBOX}:{relay.port}", dirs["proxy"]),
            "notify": start_testssl(f"{inbound.NOTIFY_NAME}:{bridges['notify'].listen[1]}", dirs["notify"]),
        }
        deadline = started + SIMULATION_TIMEOUT
        for proc, _, _ in runs.values():
            wait_testssl(proc, deadline)
        print(f"\nclient simulation: three testssl runs took {time.monotonic() - started:.0f} s together")
        crashed = {name: b.crashed() for name, b in bridges.items()}
        # Stopped before reading: a stopped bridge has written the record of every session (the relay's last
        # tunnel may still be closing when testssl exits).
        relay.stop()
        for b in bridges.values():
            b.stop()
        results: dict = {"relay": relay}
        for name, (proc, out, err) in runs.items():
            stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
            results[name] = Simulation(outcomes=parse_client_lines(stdout),
                                       records=read_records(bridges[name].session_log), crashed=crashed[name],
                                       output=f"exit {proc.returncode}\n{stdout[-3000:]}\n{stderr[-2000:]}")
        yield results
    finally:
        for proc, _, _ in runs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if relay is not None:
            relay.stop()
        for b in bridges.values():
            b.stop()


def checked(simulations, name: str) -> Simulation:
    sim = simulations[name]
    assert sim.crashed is None, f"the {name} bridge exited on its own ({sim.crashed})"
    assert len(sim.outcomes) > 100, f"testssl printed too few client lines:\n{sim.output}"
    return sim


# --- the tests ----------------------------------------------------------------------------------------------------

def test_the_expected_sets_are_what_testssls_client_table_says():
    """The hard-coded sets above, recomputed from the recorded clients' own limits: a newer testssl table that
    adds or changes a client shows up here first, with the difference."""
    table = client_table()
    no_aes = {c.name for c in table.values() if not any("AES" in cipher for cipher in c.ciphers)}
    assert no_aes == LEGACY_NO_CONNECTION, (no_aes ^ LEGACY_NO_CONNECTION)
    below = {c.name for c in table.values() if c.highest_protocol < 0x0303}
    assert below == NOTIFY_SSL3_ONLY | NOTIFY_TLS10_AT_MOST | NOTIFY_TLS11_AT_MOST, \
        below ^ (NOTIFY_SSL3_ONLY | NOTIFY_TLS10_AT_MOST | NOTIFY_TLS11_AT_MOST)
    assert {c.name for c in table.values() if c.highest_protocol == 0x0300} == NOTIFY_SSL3_ONLY
    assert {c.name for c in table.values() if c.highest_protocol == 0x0302} == NOTIFY_TLS11_AT_MOST
    no_suite = {c.name for c in table.values() if c.highest_protocol >= 0x0303 and not c.tls13_suites
                and not any(RSA_FORWARD_SECRET_AEAD.match(cipher) for cipher in c.ciphers)}
    assert no_suite == NOTIFY_TLS12_WITHOUT_AEAD_FOR_RSA, no_suite ^ NOTIFY_TLS12_WITHOUT_AEAD_FOR_RSA


def assert_legacy_outcomes(sim: Simulation) -> None:
    refused = sim.refused()
    assert refused == LEGACY_NO_CONNECTION, \
        f"connected but expected not to: {sorted(LEGACY_NO_CONNECTION - refused)}; " \
        f"no connection but expected to connect: {sorted(refused - LEGACY_NO_CONNECTION)}"
    assert sim.outcomes.get("Java 6u45", "").startswith("TLSv1.0 AES"), sim.outcomes.get("Java 6u45")
    assert sim.outcomes.get("OpenSSL 0.9.8y", "").startswith("TLSv1.0 AES"), sim.outcomes.get("OpenSSL 0.9.8y")
    given_dhe = {name: outcome for name, outcome in sim.outcomes.items() if " DHE-" in f" {outcome}"}
    assert not given_dhe, f"clients given a DHE suite: {given_dhe}"


def test_every_recorded_client_that_offers_aes_connects_to_a_default_legacy_listener(simulations):
    assert_legacy_outcomes(checked(simulations, "tls"))


def test_every_recorded_client_that_offers_aes_connects_inside_a_connect_tunnel(simulations):
    sim = checked(simulations, "proxy")
    relay = simulations["relay"]
    # every connection testssl made was a tunnel the bridge opened (200), and every record says so
    assert not relay.not_established(), relay.not_established()[:5]
    assert len(relay.connections) >= len(sim.outcomes), (len(relay.connections), len(sim.outcomes))
    assert len(sim.records) == len(relay.connections), (len(sim.records), len(relay.connections))
    not_tunnelled = [r for r in sim.records if r["downstream"]["connect"] != f"{SANDBOX}:443"]
    assert not not_tunnelled, not_tunnelled[:3]
    assert_legacy_outcomes(sim)


def test_the_notify_listener_default_serves_exactly_the_clients_with_tls12_forward_secret_aead(simulations):
    sim = checked(simulations, "notify")
    refused = sim.refused()
    assert refused == NOTIFY_NO_CONNECTION, \
        f"connected but expected not to: {sorted(NOTIFY_NO_CONNECTION - refused)}; " \
        f"no connection but expected to connect: {sorted(refused - NOTIFY_NO_CONNECTION)}"
    below_tls12 = {name: outcome for name, outcome in sim.outcomes.items()
                   if outcome != "No connection" and not outcome.startswith(("TLSv1.2", "TLSv1.3"))}
    assert not below_tls12, below_tls12
