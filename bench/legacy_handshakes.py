#!/usr/bin/env python3
"""Legacy handshake CPU (issue #15, item 5): full TLS 1.0 handshakes per CPU-second of the proxy, per legacy
client type, for tls-bridge, HAProxy and stunnel with the same legacy policy (run through bench/legacy-handshakes).

Each proxy terminates TLS 1.0 (RSA-2048 certificate, tls-bridge's default legacy cipher list, server
preference, security level 0) and originates TLS 1.2 to one nginx with session resumption (cache and
tickets), so every downstream connection costs one full legacy handshake plus one resumed upstream
handshake. A plain downstream port on each proxy, through the same upstream, gives the baseline: what a
connection costs without the legacy handshake. The proxy runs alone on CPU 0; nginx, the clients and this
driver on CPU 1. CPU is utime + stime from /proc/PID/stat across a fixed time of serial connections.
Every process it starts is stopped by PID; everything listens on 127.0.0.1.
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (process handling, certificates, nginx config, CPU counters)

# One row per legacy client type: the suite tls-bridge's default legacy policy picks for it (proven by
# Tests/Integration/test_legacy_stacks_end_to_end.py) and the groups it offers (old clients: NIST curves).
CLIENTS = [
    ("Java 6u45", "AES128-SHA", None),
    ("OpenSSL 0.9.8y (PHP/curl)", "AES256-SHA", None),
    ("Java 7u25", "ECDHE-RSA-AES128-SHA", "P-256"),
    ("SChannel Vista / Win 7 (.NET, Server 2008 / R2)", "ECDHE-RSA-AES256-SHA", "P-256"),
]

PROXIES = [("tb", "tls-bridge"), ("haproxy", "HAProxy"), ("stunnel", "stunnel")]
BASELINE = "plain (baseline)"

# The client process: no extended_master_secret (the old stacks send none) and the stack's groups.
CLIENT_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_module
[ssl_module]
system_default = legacy_client
[legacy_client]
Options = -ExtendedMasterSecret
{groups}
"""

TB_CONF = """workers = 1

[log]
sessions = "{tmp}/tb-sessions.jsonl"
level = "warning"

[limits]
max_sessions = 8000

[[upstream]]
name = "gw"
address = "127.0.0.1:{resume_port}"
server_name = "gateway.test"
ca_file = "{tmp}/ca.pem"
min_version = "TLS1.2"

[[listener]]
name = "legacy"
listen = "127.0.0.1:{l_tls}"
accept = "tls"
min_version = "TLS1.0"
cert = "{tmp}/server.pem"
key = "{tmp}/server.key"
upstream = "gw"

[[listener]]
name = "plain"
listen = "127.0.0.1:{l_plain}"
upstream = "gw"
"""

HAPROXY_CONF = """global
    nbthread 1
    maxconn 6000
    ssl-server-verify required
defaults
    mode tcp
    timeout connect 10s
    timeout client 60s
    timeout server 60s
frontend legacy
    bind 127.0.0.1:{l_tls} ssl crt {tmp}/server-combined.pem ssl-min-ver TLSv1.0 ciphers {ciphers} curves P-256:X25519
    default_backend gw
frontend plain
    bind 127.0.0.1:{l_plain}
    default_backend gw
backend gw
    server gw 127.0.0.1:{resume_port} ssl verify required ca-file {tmp}/ca.pem sni str(gateway.test) verifyhost gateway.test ssl-min-ver TLSv1.2
"""

# stunnel terminates or originates TLS per service, not both: the legacy service hands its plaintext to the
# origination service over loopback inside the same process (its CPU includes that extra hop: see README).
STUNNEL_CONF = """foreground = yes
pid =
output = {tmp}/stunnel.log
debug = 3
[legacy]
accept = 127.0.0.1:{l_tls}
connect = 127.0.0.1:{l_plain}
cert = {tmp}/server.pem
key = {tmp}/server.key
sslVersionMin = TLSv1
ciphers = {ciphers}
options = CIPHER_SERVER_PREFERENCE
curves = P-256:X25519
[gw]
client = yes
accept = 127.0.0.1:{l_plain}
connect = 127.0.0.1:{resume_port}
CAfile = {tmp}/ca.pem
verifyChain = yes
checkHost = gateway.test
sni = gateway.test
sslVersionMin = TLSv1.2
"""


def legacy_ciphers(root):
    """tls-bridge's default legacy listener cipher string, read from its source (one truth for all three)."""
    text = open(os.path.join(root, "Sources/BridgeModel/Config.swift"), encoding="utf-8").read()
    m = re.search(r'legacyListenerCiphers\s*=\s*"([^"]+)"', text)
    if not m:
        raise RuntimeError("legacyListenerCiphers not found in Sources/BridgeModel/Config.swift")
    return m.group(1)


def launch(key, label, ports, ciphers):
    l_tls, l_plain = B.free_port(), B.free_port()
    fill = dict(tmp=B.TMP, l_tls=l_tls, l_plain=l_plain, ciphers=ciphers, **ports)
    if key == "tb":
        conf = f"{B.TMP}/tb.toml"
        with open(conf, "w") as f:
            f.write(TB_CONF.format(**fill))
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
        proc = B.start(key, [f"{B.TMP}/tls-bridge", "run", "--config", conf], B.PROXY_CPUS, env=env)
    elif key == "haproxy":
        conf = f"{B.TMP}/haproxy.cfg"
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(**fill))
        proc = B.start(key, ["haproxy", "-db", "-f", conf], B.PROXY_CPUS)
    else:
        conf = f"{B.TMP}/stunnel.conf"
        with open(conf, "w") as f:
            f.write(STUNNEL_CONF.format(**fill))
        proc = B.start(key, ["stunnel", conf], B.PROXY_CPUS)
    B.wait_port(l_tls, proc, label)
    B.wait_port(l_plain, proc, label)
    return {"key": key, "label": label, "proc": proc, "l_tls": l_tls, "l_plain": l_plain}


def client_env(groups):
    conf = f"{B.TMP}/client-{groups or 'none'}.cnf"
    with open(conf, "w") as f:
        f.write(CLIENT_CONF.format(groups=f"Groups = {groups}" if groups else ""))
    return dict(os.environ, OPENSSL_CONF=conf)


def negotiated(port, suite, groups):
    """One s_client handshake: the (protocol, cipher) the proxy chose, and the bytes of /1k through it."""
    r = subprocess.run(["taskset", "-c", B.LOAD_CPUS, "openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-tls1", "-cipher", suite + ":@SECLEVEL=0", "-noservername", "-no_ticket", "-no_etm",
                        "-ign_eof"], input=b"GET /1k HTTP/1.0\r\n\r\n", capture_output=True, timeout=20,
                       env=client_env(groups))
    out = r.stdout.decode(errors="replace")
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    cipher = re.search(r"^\s*Cipher\s*:\s*(\S+)", out, re.M)
    return (proto.group(1) if proto else None, cipher.group(1) if cipher else None), out


def s_time(port, suite, groups, seconds):
    """Serial new TLS 1.0 connections for `seconds` (GET /1k each): how many completed, and the bytes read."""
    argv = ["taskset", "-c", B.LOAD_CPUS, "openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-tls1",
            "-cipher", suite + ":@SECLEVEL=0", "-www", "/1k", "-time", str(seconds)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, env=client_env(groups))
    m = re.search(r"(\d+) connections in [\d.]+s;", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"s_time failed ({r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    b = re.search(r"bytes read (\d+)", r.stdout)
    return int(m.group(1)), int(b.group(1)) if b else 0


def plain_loop(port, seconds):
    """Serial plain connections for `seconds` (GET /1k each, read to EOF): how many completed with the page."""
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /1k HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if data.startswith(b"HTTP/1.1 200") and len(data) > 1024:
            done += 1
    return done


def measure(px, what, seconds, env_groups=None):
    """CPU seconds of the proxy per connection for one run: ('plain', None) or (suite, groups)."""
    pid = px["proc"].pid
    log0 = B.count_lines(f"{B.TMP}/reused-resume.log")
    cpu0, t0 = B.cpu_seconds(pid), time.monotonic()
    if what == "plain":
        n, nbytes = plain_loop(px["l_plain"], seconds), None
    else:
        n, nbytes = s_time(px["l_tls"], what, env_groups, seconds)
    wall = time.monotonic() - t0
    time.sleep(0.3)  # the last connection's close, and nginx's log line
    cpu = B.cpu_seconds(pid) - cpu0
    if nbytes is not None and nbytes < n * 1024:
        raise RuntimeError(f"{px['label']}: {n} connections read only {nbytes} bytes (GET /1k each)")
    log1 = B.count_lines(f"{B.TMP}/reused-resume.log")
    resumed, full = log1[0] - log0[0], log1[1] - log0[1]
    return {"n": n, "cpu": cpu, "wall": wall, "bytes": nbytes, "resumed": resumed, "full": full}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--quick", action="store_true", help="2 s per run, 1 repetition (a smoke test)")
    ap.add_argument("--seconds", type=int, help="seconds per run (default 6; 2 with --quick)")
    ap.add_argument("--reps", type=int, help="repetitions, interleaved across proxies (default 3; 1 with --quick)")
    ap.add_argument("--binary", help="benchmark this tls-bridge binary instead of .build/release/tls-bridge")
    ap.add_argument("--out", help="also write the markdown table to this file")
    args = ap.parse_args()
    seconds = args.seconds or (2 if args.quick else 6)
    reps = args.reps or (1 if args.quick else 3)

    signal.signal(signal.SIGTERM, B.on_signal)
    signal.signal(signal.SIGINT, B.on_signal)
    B.TMP = tempfile.mkdtemp(prefix="tls-bridge-legacy-hs-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        if (os.cpu_count() or 1) >= 2:
            B.PROXY_CPUS, B.LOAD_CPUS, B.ALL_CPUS = "0", "1", "0,1"
            pinning = "each proxy alone on CPU 0; nginx, the clients and this driver on CPU 1"
        else:
            B.PROXY_CPUS = B.LOAD_CPUS = B.ALL_CPUS = "0"
            pinning = "none possible (1 CPU)"
        os.sched_setaffinity(0, {int(B.LOAD_CPUS)})
        load_start = open("/proc/loadavg").read().split()[0]
        import shutil
        shutil.copy(args.binary or os.path.join(args.root, ".build/release/tls-bridge"), f"{B.TMP}/tls-bridge")
        ciphers = legacy_ciphers(args.root)

        B.make_certs(B.TMP)
        os.chmod(f"{B.TMP}/server.key", 0o600)
        with open(f"{B.TMP}/server-combined.pem", "w") as f:
            f.write(open(f"{B.TMP}/server.pem").read() + open(f"{B.TMP}/server.key").read())
        www = f"{B.TMP}/www"
        B.make_files(www, 1 << 20, 1 << 20)
        ports = {"resume_port": B.free_port(), "full_port": B.free_port(), "plain_port": B.free_port()}
        soft = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[0]
        with open(f"{B.TMP}/nginx.conf", "w") as f:
            f.write(B.NGINX_CONF.format(tmp=B.TMP, www=www, nofile=soft, **ports))
        nginx = B.start("nginx", ["nginx", "-e", f"{B.TMP}/nginx-error.log", "-p", B.TMP, "-c", f"{B.TMP}/nginx.conf"],
                        B.LOAD_CPUS)
        for p in ports.values():
            B.wait_port(p, nginx, "nginx")

        proxies = [launch(key, label, ports, ciphers) for key, label in PROXIES]

        # sanity, outside the timed runs: each proxy picks the expected suite for each client, and serves the page
        picks = {}
        for px in proxies:
            for name, suite, groups in CLIENTS:
                (proto, cipher), out = negotiated(px["l_tls"], suite, groups)
                picks[(px["key"], name)] = (proto, cipher)
                if (proto, cipher) != ("TLSv1", suite) or "200 OK" not in out:
                    raise RuntimeError(f"{px['label']} with {name}: got {proto} {cipher} instead of TLSv1 {suite}"
                                       f":\n{out[-1500:]}\n" + B.tail(px["key"]))
            for _ in range(20):  # warm up: caches, upstream session
                plain_loop(px["l_plain"], 0.01)

        # Each legacy run is paired with a plain baseline run of the same proxy just before it: on a shared
        # machine the cost of a connection drifts over minutes, and the handshake's share is the difference.
        samples = {}  # (proxy key, row) -> [result]; a legacy result carries its paired baseline's µs/conn
        rows = [("plain", BASELINE, None)] + [(suite, name, groups) for name, suite, groups in CLIENTS]
        base_seconds = max(1, seconds // 2)
        for rep in range(reps):
            for what, row, groups in rows[1:]:
                for px in proxies[rep % len(proxies):] + proxies[:rep % len(proxies)]:
                    base = measure(px, "plain", base_seconds)
                    samples.setdefault((px["key"], BASELINE), []).append(base)
                    res = measure(px, what, seconds, groups)
                    res["baseline_us"] = base["cpu"] / max(base["n"], 1) * 1e6
                    samples.setdefault((px["key"], row), []).append(res)
                    B.log(f"rep {rep + 1}/{reps} {px['label']:10} {row:48} {res['n']:6d} conns "
                          f"{res['cpu']:.2f} CPU-s (baseline {res['baseline_us']:.0f} µs/conn)  upstream resumed "
                          f"{res['resumed'] + base['resumed']}/{res['n'] + base['n']}")
        for px in proxies:
            if px["proc"].poll() is not None:
                raise RuntimeError(f"{px['label']} exited during the run:\n" + B.tail(px["key"]))

        text = report(samples, rows, proxies, seconds, reps, pinning, load_start, ciphers)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)
    finally:
        B.cleanup()


def crypto_reference(seconds=1):
    """openssl speed on the proxy's core: RSA-2048 private-key operations (one per full handshake: a signature
    with ECDHE, a decryption with RSA key exchange) and P-256 ECDH (one more per ECDHE handshake) per second."""
    r = B.run(["openssl", "speed", "-seconds", str(seconds), "rsa2048", "ecdhp256"], 60, cpus=B.PROXY_CPUS,
              check=False)
    rsa = re.search(r"^rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", r.stdout, re.M)
    ecdh = re.search(r"\(nistp256\)\s+\S+\s+([\d.]+)", r.stdout)
    return (float(rsa.group(1)) if rsa else None), (float(ecdh.group(1)) if ecdh else None)


def report(samples, rows, proxies, seconds, reps, pinning, load_start, ciphers):
    def per_cpu(res):
        return res["n"] / res["cpu"] if res["cpu"] > 0 else float("inf")

    def us(res):
        return res["cpu"] / max(res["n"], 1) * 1e6

    lines = ["| client (the suite the default picks) | " + " | ".join(p["label"] for p in proxies) + " |",
             "|---|" + "---:|" * len(proxies)]
    for what, row, groups in rows:
        cells = []
        for px in proxies:
            rs = samples[(px["key"], row)]
            rates = sorted(per_cpu(r) for r in rs)
            cell = (f"**{statistics.median(rates):,.0f}** ({rates[0]:,.0f}–{rates[-1]:,.0f}) · "
                    f"{statistics.median(us(r) for r in rs):.0f} µs")
            if what != "plain":
                cell += f" · handshake ≈ {statistics.median(us(r) - r['baseline_us'] for r in rs):.0f} µs"
            cells.append(cell)
        label = row if what == "plain" else f"{row}: {what}" + (f", {groups}" if groups else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = sum(r["n"] for rs in samples.values() for r in rs)
    resumed = sum(r["resumed"] for rs in samples.values() for r in rs)
    upstream = sum(r["resumed"] + r["full"] for rs in samples.values() for r in rs)
    rsa, ecdh = crypto_reference()
    load_end = open("/proc/loadavg").read().split()[0]
    lines += ["", f"Connections per CPU-second of the proxy: median (min–max) of {reps} runs of {seconds} s "
              f"({max(1, seconds // 2)} s for each baseline run), serial connections, GET /1k each, {n} connections "
              f"in all; then the proxy's CPU per connection. \"handshake ≈\": median over the runs of the CPU per "
              f"connection minus that of the plain baseline run just before it, i.e. what the TLS 1.0 handshake "
              f"and its record layer add. Upstream TLS 1.2 handshakes resumed (nginx's log): {resumed} of "
              f"{upstream}. Crypto on CPU 0: RSA-2048 sign {rsa or 0:,.0f}/s, P-256 ECDH {ecdh or 0:,.0f}/s. "
              f"Pinning: {pinning}. Load average {load_start} at start, {load_end} at end. "
              f"Legacy cipher list (all three): `{ciphers}`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
