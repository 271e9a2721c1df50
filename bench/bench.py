#!/usr/bin/env python3
"""tls-bridge benchmark driver (run through bench/run, which installs and builds first).

Starts one nginx (TLS 1.2 only, RSA-2048, ECDHE-AES-GCM) and, in front of it, tls-bridge
(workers = 1 and workers = 2), HAProxy (mode tcp, one thread, ssl verify required), stunnel (client
mode, verifyChain + checkHost) and a plain TCP relay (HAProxy without TLS, the floor of relaying).
Measures each figure interleaved across the proxies, repeated, and prints a markdown report.
Every process it starts is stopped by PID when it exits; everything listens on 127.0.0.1 only.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HZ = os.sysconf("SC_CLK_TCK")
PROCS = []          # (name, Popen) of everything we started
TMP = None


# ---------------------------------------------------------------- processes

def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start(name, argv, cpus, env=None):
    out = open(os.path.join(TMP, f"{name}.out"), "wb")
    p = subprocess.Popen(["taskset", "-c", cpus] + argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    PROCS.append((name, p))
    return p


def stop(p, timeout=5.0):
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)


def cleanup(*_):
    for _, p in reversed(PROCS):
        try:
            stop(p)
        except Exception:
            pass
    PROCS.clear()
    if TMP and os.path.isdir(TMP) and not os.environ.get("BENCH_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def run(argv, timeout, cpus=None, check=True, env=None):
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {(r.stdout + r.stderr).strip()[-800:]}")
    return r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, name, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}); see its output:\n" + tail(name))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} does not listen on {port}")


def tail(name, n=30):
    try:
        with open(os.path.join(TMP, f"{name}.out"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads, also exited ones), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def cpu0_busy():
    """Busy seconds of the proxy core (all processes, interrupts included), from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{PROXY_CPUS} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v[:8]) - v[3] - v[4]) / HZ
    return 0.0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- setup

def make_certs(d):
    def ossl(*args):
        run(["openssl", *args], 60)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
         "-days", "2", "-subj", "/CN=Bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr",
         "-subj", "/CN=gateway.test")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:gateway.test\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
         "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "2", "-sha256", "-extfile", f"{d}/ext.cnf")


def make_files(www, big_bytes, up_bytes):
    os.makedirs(f"{www}/upload", exist_ok=True)
    with open(f"{www}/1k", "wb") as f:
        f.write(os.urandom(1024))
    digests = {}
    for path, size in ((f"{www}/big.bin", big_bytes), (f"{TMP}/up.bin", up_bytes)):
        h = hashlib.sha256()
        chunk = os.urandom(1 << 20)   # 1 MiB of random bytes, each repetition salted by its index
        with open(path, "wb") as f:
            for i in range(size >> 20):
                block = i.to_bytes(8, "little") + chunk[8:]
                h.update(block)
                f.write(block)
        digests[os.path.basename(path)] = h.hexdigest()
    return digests


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
error_log {tmp}/nginx-error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 16000; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_header_timeout 300s;
    client_body_timeout 300s;
    client_max_body_size 0;
    ssl_certificate {tmp}/server.pem;
    ssl_certificate_key {tmp}/server.key;
    ssl_protocols TLSv1.2;
    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1;
    # one line per upstream TLS connection: was its session resumed? ("r" or ".")
    log_format reused '$ssl_session_reused';
    map $connection_requests $first_request {{ 1 1; default 0; }}
    server {{
        listen 127.0.0.1:{resume_port} ssl;
        ssl_session_cache shared:BENCH:32m;
        ssl_session_tickets on;
        ssl_session_timeout 1h;
        access_log {tmp}/reused-resume.log reused if=$first_request;
        root {www};
        location /upload/ {{ dav_methods PUT; create_full_put_path on; }}
    }}
    server {{
        listen 127.0.0.1:{full_port} ssl;
        ssl_session_cache off;
        ssl_session_tickets off;
        access_log {tmp}/reused-full.log reused if=$first_request;
        root {www};
        location /upload/ {{ dav_methods PUT; create_full_put_path on; }}
    }}
    server {{
        listen 127.0.0.1:{plain_port};
        root {www};
        location /upload/ {{ dav_methods PUT; create_full_put_path on; }}
    }}
}}
"""

TB_CONF = """workers = {workers}

[log]
sessions = "{tmp}/tb{workers}-sessions.jsonl"
level = "warning"

[limits]
max_sessions = 8000

[[upstream]]
name = "resume"
address = "127.0.0.1:{resume_port}"
server_name = "gateway.test"
ca_file = "{tmp}/ca.pem"
min_version = "TLS1.2"

[[upstream]]
name = "full"
address = "127.0.0.1:{full_port}"
server_name = "gateway.test"
ca_file = "{tmp}/ca.pem"
min_version = "TLS1.2"

[[listener]]
name = "resume"
listen = "127.0.0.1:{l_resume}"
upstream = "resume"

[[listener]]
name = "full"
listen = "127.0.0.1:{l_full}"
upstream = "full"
"""

HAPROXY_CONF = """global
    nbthread 1
    maxconn 6000
    ssl-server-verify required
defaults
    mode tcp
    timeout connect 10s
    timeout client 300s
    timeout server 300s
frontend resume
    bind 127.0.0.1:{l_resume}
    default_backend resume
frontend full
    bind 127.0.0.1:{l_full}
    default_backend full
backend resume
    server gw 127.0.0.1:{resume_port} ssl verify required ca-file {tmp}/ca.pem sni str(gateway.test) verifyhost gateway.test ssl-min-ver TLSv1.2
backend full
    server gw 127.0.0.1:{full_port} ssl verify required ca-file {tmp}/ca.pem sni str(gateway.test) verifyhost gateway.test ssl-min-ver TLSv1.2
"""

RELAY_CONF = """global
    nbthread 1
    maxconn 6000
defaults
    mode tcp
    timeout connect 10s
    timeout client 300s
    timeout server 300s
frontend plain
    bind 127.0.0.1:{l_resume}
    default_backend plain
backend plain
    server nginx 127.0.0.1:{plain_port}
"""

STUNNEL_CONF = """foreground = yes
pid =
output = {tmp}/stunnel.log
debug = 3
[resume]
client = yes
accept = 127.0.0.1:{l_resume}
connect = 127.0.0.1:{resume_port}
CAfile = {tmp}/ca.pem
verifyChain = yes
checkHost = gateway.test
sni = gateway.test
sslVersionMin = TLSv1.2
[full]
client = yes
accept = 127.0.0.1:{l_full}
connect = 127.0.0.1:{full_port}
CAfile = {tmp}/ca.pem
verifyChain = yes
checkHost = gateway.test
sni = gateway.test
sslVersionMin = TLSv1.2
"""


class Proxy:
    def __init__(self, key, label, tls=True):
        self.key, self.label, self.tls = key, label, tls
        self.l_resume, self.l_full = free_port(), free_port()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid


def launch(px, ports, suffix=""):
    """Starts proxy `px` (config from its key) and checks one request through it."""
    fill = dict(tmp=TMP, l_resume=px.l_resume, l_full=px.l_full, **ports)
    if px.key in ("tb1", "tb2"):
        workers = 1 if px.key == "tb1" else 2
        conf = f"{TMP}/{px.key}{suffix}.toml"
        with open(conf, "w") as f:
            f.write(TB_CONF.format(workers=workers, **fill))
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
        px.proc = start(px.key + suffix, [f"{TMP}/tls-bridge", "run", "--config", conf],
                        PROXY_CPUS if workers == 1 else ALL_CPUS, env=env)
    elif px.key == "haproxy" or px.key == "relay":
        conf = f"{TMP}/{px.key}{suffix}.cfg"
        with open(conf, "w") as f:
            f.write((HAPROXY_CONF if px.key == "haproxy" else RELAY_CONF).format(**fill))
        px.proc = start(px.key + suffix, ["haproxy", "-db", "-f", conf], PROXY_CPUS)
    else:
        conf = f"{TMP}/stunnel{suffix}.conf"
        with open(conf, "w") as f:
            f.write(STUNNEL_CONF.format(**fill))
        px.proc = start(px.key + suffix, ["stunnel", conf], PROXY_CPUS)
    wait_port(px.l_resume, px.proc, px.label)
    # sanity: one request through, 1 KiB back
    got = run(["curl", "-sS", "-f", "--max-time", "10", "-o", "/dev/null", "-w", "%{size_download}",
               f"http://127.0.0.1:{px.l_resume}/1k"], 20).stdout
    if got.strip() != "1024":
        raise RuntimeError(f"{px.label}: {got!r} bytes instead of 1024 through the proxy")



# ---------------------------------------------------------------- measurements

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", text or "")
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def wrk(proxy, port, seconds, close):
    argv = ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/1k")
    cpu0, busy0, t0 = cpu_seconds(proxy.pid), cpu0_busy(), time.time()
    r = run(argv, seconds + 60, cpus=LOAD_CPUS)
    cpu = cpu_seconds(proxy.pid) - cpu0
    other = (cpu0_busy() - busy0 - cpu) / (time.time() - t0) if proxy.key != "tb2" else None
    out = r.stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    if "50" not in lat or "99" not in lat:
        log(f"warning: wrk printed no latency distribution for {proxy.label}:\n{out}\n{r.stderr}")
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": parse_ms(lat.get("50")), "p99_ms": parse_ms(lat.get("99")),
            "requests": requests, "cpu_s": cpu, "core0_other": other, "cpu_us_per_req": cpu / max(requests, 1) * 1e6,
            "errors": (errors.group(1) if errors else "") + (f", non-2xx {non2xx.group(1)}" if non2xx else "")}


def count_lines(path):
    try:
        with open(path) as f:
            data = f.read()
        return data.count("r"), data.count(".")
    except OSError:
        return 0, 0


def new_connections(proxy, which, seconds):
    port = proxy.l_resume if which == "resume" else proxy.l_full
    logf = f"{TMP}/reused-{which}.log"
    r0, f0 = count_lines(logf)
    res = wrk(proxy, port, seconds, close=True)
    time.sleep(0.2)
    r1, f1 = count_lines(logf)
    resumed, full = r1 - r0, f1 - f0
    res["resumed_share"] = resumed / max(resumed + full, 1)
    res["upstream_conns"] = resumed + full
    return res


def curl_transfer(proxy, upload, check, digests, big_name):
    base = f"http://127.0.0.1:{proxy.l_resume}"
    cpu0 = cpu_seconds(proxy.pid)
    if upload:
        target = f"/upload/up-{proxy.key}.bin"
        r = run(["curl", "-sS", "-f", "-H", "Expect:", "-T", f"{TMP}/up.bin", "-o", "/dev/null",
                 "-w", "%{size_upload} %{time_total}", base + target], 300, cpus=LOAD_CPUS)
    else:
        r = run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                 base + "/" + big_name], 300, cpus=LOAD_CPUS)
    cpu = cpu_seconds(proxy.pid) - cpu0
    size, secs = r.stdout.split()
    size, secs = int(size), float(secs)
    ok = None
    if check:
        if upload:
            with open(f"{WWW}/upload/up-{proxy.key}.bin", "rb") as f:
                ok = sha256_file(f) == digests["up.bin"]
        else:
            p = subprocess.Popen(["taskset", "-c", LOAD_CPUS, "curl", "-sS", "-f", base + "/" + big_name],
                                 stdout=subprocess.PIPE)
            ok = sha256_file(p.stdout) == digests["big.bin"]
            p.wait(300)
    return {"bytes": size, "seconds": secs, "mb_s": size / secs / 1e6, "cpu_s": cpu,
            "cpu_s_per_gib": cpu / (size / 2**30), "sha256_ok": ok}


def sha256_file(f):
    h = hashlib.sha256()
    while True:
        b = f.read(1 << 20)
        if not b:
            return h.hexdigest()
        h.update(b)


def upstream_sockets(port):
    """bytes_received of every established socket whose remote port is `port` (the proxies' side)."""
    r = run(["ss", "-Htni", "state", "established", f"( dport = :{port} )"], 30)
    counts = []
    for line in r.stdout.splitlines():
        if not line[:1].isspace() and line.strip():
            counts.append(0)          # a socket line; its details follow, indented
        elif counts:
            m = re.search(r"bytes_received:(\d+)", line)
            if m:
                counts[-1] = int(m.group(1))
    return counts


def open_idle(port, n):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        socks.append(s)
        if i % 100 == 99:
            time.sleep(0.02)
    return socks


def idle_memory(proxy, n, upstream_port):
    """RSS delta over n idle sessions, each with its upstream TLS connection open and handshaken."""
    # Calibrate: how many bytes the proxy has received once one full handshake is done.
    s = open_idle(proxy.l_full, 1)
    deadline = time.time() + 10
    calib = 0
    while time.time() < deadline:
        got = upstream_sockets(upstream_port)
        if got and max(got) > 1000:
            time.sleep(0.5)
            calib = max(upstream_sockets(upstream_port))
            break
        time.sleep(0.05)
    s[0].close()
    wait_gone(upstream_port)
    if not calib:
        raise RuntimeError(f"{proxy.label}: no upstream TLS connection after an idle accept")
    time.sleep(0.5)
    before = rss_kib(proxy.pid)
    socks = open_idle(proxy.l_full, n)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline:
        done = sum(1 for b in upstream_sockets(upstream_port) if b >= calib)
        if done >= n:
            break
        time.sleep(0.25)
    time.sleep(1.0)
    after = rss_kib(proxy.pid)
    for s in socks:
        s.close()
    wait_gone(upstream_port)
    if done < n:
        raise RuntimeError(f"{proxy.label}: only {done} of {n} upstream handshakes completed")
    return {"rss_before_kib": before, "rss_after_kib": after, "sessions": n,
            "kib_per_session": (after - before) / n}


def wait_gone(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not upstream_sockets(port):
            return
        time.sleep(0.2)
    log(f"warning: upstream connections to :{port} still open after {timeout}s")


# ---------------------------------------------------------------- physical limits

def physical_limits(seconds):
    lim = {}
    r = run(["openssl", "speed", "-seconds", str(seconds), "-bytes", "16384", "-evp", "aes-128-gcm"],
            seconds * 3 + 60, cpus=PROXY_CPUS)
    m = re.search(r"^aes-128-gcm\s+([\d.]+)k", r.stdout, re.M | re.I)
    lim["aes128gcm_mb_s"] = float(m.group(1)) * 1000 / 1e6 if m else None
    r = run(["openssl", "speed", "-seconds", str(seconds), "ecdhx25519"], seconds * 3 + 60, cpus=PROXY_CPUS)
    m = re.search(r"\(X25519\)\s+[\d.]+s\s+([\d.]+)", r.stdout)
    lim["x25519_ops"] = float(m.group(1)) if m else None
    r = run(["openssl", "speed", "-seconds", str(seconds), "rsa2048"], seconds * 3 + 60, cpus=PROXY_CPUS)
    m = re.search(r"^rsa 2048 bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", r.stdout, re.M)
    lim["rsa2048_sign"], lim["rsa2048_verify"] = (float(m.group(1)), float(m.group(2))) if m else (None, None)
    port = free_port()
    srv = start("iperf3", ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)], LOAD_CPUS)
    wait_port(port, srv, "iperf3")
    try:
        r = run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"], seconds + 60,
                cpus=PROXY_CPUS)
        lim["loopback_mb_s"] = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
    finally:
        stop(srv)
    return lim


# ---------------------------------------------------------------- report

def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    if digits == 0 and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def cell(samples, key, digits=0, scale=1.0):
    xs = [s[key] * scale for s in samples if s.get(key) is not None]
    if not xs:
        return "–", None
    m = med(xs)
    if len(xs) == 1:
        return fmt(m, digits), m
    return f"{fmt(m, digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})", m


def report(R, args, info, lim):
    rows = []
    keys = ["tb1", "haproxy", "stunnel"]
    extra = ["tb2", "relay"]

    def row(figure, test, key, digits, target, better, scale=1.0, extra_ok=True, note_target=None):
        cells, meds = {}, {}
        for k in keys + extra:
            samples = R.get(test, {}).get(k, [])
            if not samples or (k == "relay" and not extra_ok):
                cells[k], meds[k] = "–", None
            else:
                cells[k], meds[k] = cell(samples, key, digits, scale)
        tb, hp, st = meds["tb1"], meds["haproxy"], meds["stunnel"]
        rh = f"{tb / hp:.2f}" if tb is not None and hp else "–"
        rs = f"{tb / st:.2f}" if tb is not None and st else "–"
        verdict = "–"
        if target and tb is not None:
            ok = target(tb, hp, st, meds.get("relay"))
            verdict = "met" if ok else ("**missed**" if ok is not None else "–")
        rows.append(f"| {figure} | {cells['tb1']} | {cells['haproxy']} | {cells['stunnel']} | {rh} | {rs} | "
                    f"{note_target or '–'} | {verdict} | {cells['tb2']} | {cells['relay']} |")

    def best(a, b, hi=True):
        xs = [x for x in (a, b) if x is not None]
        return (max(xs) if hi else min(xs)) if xs else None

    def ge(x, y):
        return None if y is None else x >= y

    def le(x, y):
        return None if y is None else x <= y

    row("keep-alive req/s", "keepalive", "rps", 0, lambda t, h, s, r: ge(t, h), True,
        note_target="≥ 1.0× HAProxy")
    row("keep-alive p50 latency, ms", "keepalive", "p50_ms", 2, None, False)
    row("keep-alive p99 latency, ms", "keepalive", "p99_ms", 2, lambda t, h, s, r: le(t, h), False,
        note_target="≤ HAProxy")
    row("proxy CPU per keep-alive request, µs (= s per 100k req ×10)", "keepalive", "cpu_us_per_req", 1,
        lambda t, h, s, r: le(t, 0.9 * h if h else None), False, note_target="≤ 0.9× HAProxy")
    row("new-conn req/s, upstream resumption available", "nc_resume", "rps", 0,
        lambda t, h, s, r: ge(t, 1.2 * best(h, s)) if best(h, s) else None, True,
        note_target="≥ 1.2× the better")
    row("  upstream handshakes resumed (nginx log), %", "nc_resume", "resumed_share", 0, None, True,
        scale=100, extra_ok=False)
    row("  new-conn p99 latency, ms (resumption)", "nc_resume", "p99_ms", 1,
        lambda t, h, s, r: le(t, h), False, note_target="≤ HAProxy")
    row("  proxy CPU per new connection, µs (resumption)", "nc_resume", "cpu_us_per_req", 0,
        lambda t, h, s, r: le(t, 0.8 * best(h, s, hi=False)) if best(h, s, hi=False) else None, False,
        note_target="≤ 0.8× the better")
    row("new-conn req/s, full handshakes only", "nc_full", "rps", 0, lambda t, h, s, r: ge(t, h), True,
        note_target="≥ 1.0× HAProxy")
    row("  new-conn p99 latency, ms (full)", "nc_full", "p99_ms", 1, lambda t, h, s, r: le(t, h), False,
        note_target="≤ HAProxy")
    row("  proxy CPU per new connection, µs (full)", "nc_full", "cpu_us_per_req", 0, None, False)
    row(f"bulk download MB/s ({info['big_label']})", "download", "mb_s", 0,
        lambda t, h, s, r: ge(t, best(h, s)) and (r is None or t >= 0.8 * r), True,
        note_target="≥ 1.0× the better, ≥ 80 % of relay")
    row(f"bulk upload MB/s ({info['up_label']})", "upload", "mb_s", 0, None, True)
    row("proxy CPU s per GiB, download", "download", "cpu_s_per_gib", 2, None, False)
    row("proxy CPU s per GiB, upload", "upload", "cpu_s_per_gib", 2, None, False)
    row(f"memory per idle session, KiB ({info['idle']} sessions, upstream TLS open)", "idle",
        "kib_per_session", 1, lambda t, h, s, r: le(t, 0.8 * h if h else None), False,
        note_target="≤ 0.8× HAProxy")

    checks = []
    for test in ("download", "upload"):
        for k, samples in R.get(test, {}).items():
            for s in samples:
                if s.get("sha256_ok") is not None:
                    checks.append(f"{test} {k}: {'ok' if s['sha256_ok'] else 'MISMATCH'}")
    errs = []
    for test in ("keepalive", "nc_resume", "nc_full"):
        for k, samples in R.get(test, {}).items():
            for s in samples:
                e = s.get("errors", "")
                if e and not re.fullmatch(r"connect 0, read 0, write 0, timeout 0", e):
                    errs.append(f"{test} {k}: {e}")

    out = []
    out.append(f"### Benchmark, {info['date']} ({'quick' if args.quick else 'full'} run)\n")
    out.append(f"Machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}. "
               f"Pinning (taskset): {info['pinning']}. "
               f"Each figure: median (min–max) of {args.reps} interleaved repetitions "
               f"(tls-bridge, HAProxy, stunnel, tls-bridge ×2, relay, then again); wrk -t1 -c50, "
               f"{args.duration} s per run, 1 KiB responses.\n")
    out.append(f"Versions: {info['versions']}.\n")
    others = [s["core0_other"] for t in ("keepalive", "nc_resume", "nc_full") for k, ss in R.get(t, {}).items()
              for s in ss if s.get("core0_other") is not None]
    out.append(f"Noise: load average {info['load_start']} at start, {info['load_end']} at the end; "
               f"during wrk runs core 0 was busy outside the proxy process (softirq, other processes) "
               f"{fmt(med(others) * 100 if others else None)} % of the time (median; max "
               f"{fmt(max(others) * 100 if others else None)} %).\n")
    out.append("| figure | tls-bridge (1 worker) | HAProxy tcp | stunnel | tb / HAProxy | tb / stunnel | "
               "target | met? | tls-bridge, 2 workers* | plain relay (no TLS) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    out.extend(rows)
    out.append("")
    out.append("\\* `workers = 2` runs on both cores (taskset 0,1) while nginx and the load generator stay on "
               "core 1: the load generator competes with the second worker for that core.")
    out.append("Plain relay: HAProxy 1 thread, mode tcp, no TLS, to nginx's plain port (the floor of relaying); "
               "its keep-alive and bulk rows are plain HTTP end to end.")
    out.append("CPU: utime+stime of the proxy process (all threads) from /proc/PID/stat over each run, "
               f"divided by wrk's request count or the bytes moved (clock tick {1000 // HZ} ms).")
    out.append("")
    out.append("Physical limits on this machine (one core):\n")
    out.append("| limit | value |\n|---|---|")
    out.append(f"| `openssl speed -evp aes-128-gcm`, 16 KiB blocks | {fmt(lim.get('aes128gcm_mb_s'))} MB/s |")
    out.append(f"| `openssl speed ecdhx25519` | {fmt(lim.get('x25519_ops'))} ops/s |")
    out.append(f"| `openssl speed rsa2048` (nginx's cost per full handshake) | "
               f"{fmt(lim.get('rsa2048_sign'))} sign/s, {fmt(lim.get('rsa2048_verify'))} verify/s |")
    out.append(f"| loopback TCP, iperf3 one stream (client core 0, server core 1) | "
               f"{fmt(lim.get('loopback_mb_s'))} MB/s |")
    relay_bulk = med([s["mb_s"] for s in R.get("download", {}).get("relay", [])])
    out.append(f"| plain TCP relay (HAProxy, no TLS), bulk download | {fmt(relay_bulk)} MB/s |")
    out.append("")
    out.append("SHA-256 checks: " + ("; ".join(checks) if checks else "none") + ".")
    if errs:
        out.append("wrk socket errors: " + "; ".join(errs) + ".")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- profile

def profile(proxies, args, digests):
    """perf record (cpu-clock, flat) on each chosen proxy during each workload; top symbols."""
    out = [f"### Profiles ({datetime.date.today().isoformat()}), perf record -e cpu-clock, "
           f"{args.duration} s per workload, self time by DSO and symbol\n"]
    workloads = [
        ("keepalive", "keep-alive (wrk -c50)", lambda px: wrk(px, px.l_resume, args.duration, close=False)),
        ("resume", "new connections, resumption available", lambda px: wrk(px, px.l_resume, args.duration, close=True)),
        ("full", "new connections, full handshakes", lambda px: wrk(px, px.l_full, args.duration, close=True)),
        ("download", "bulk download", lambda px: curl_transfer(px, False, False, digests, "big.bin")),
        ("upload", "bulk upload", lambda px: curl_transfer(px, True, False, digests, "big.bin")),
    ]
    if args.workloads:
        wanted = args.workloads.split(",")
        workloads = [w for w in workloads if w[0] in wanted]
    if args.no_perf:
        # Figures only, interleaved per repetition: a quick A/B of one workload without perf's overhead.
        for rep in range(args.reps):
            for _, name, action in workloads:
                for px in proxies:
                    res = action(px)
                    summary = ", ".join(f"{k}={v:.3g}" for k, v in res.items() if isinstance(v, float))
                    out.append(f"rep {rep + 1} {px.label}: {name}: {summary}")
        return "\n".join(out) + "\n"
    for px in proxies:
        for i, (_, name, action) in enumerate(workloads):
            data = f"{TMP}/perf-{px.key}-{i}.data"
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2999", "-o", data,
                                     "-p", str(px.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            res = action(px)
            os.kill(perf.pid, signal.SIGINT)
            perf.wait(60)
            rep = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                       "--percent-limit", str(args.percent_limit)], 120, check=False).stdout
            dso = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                       "--percent-limit", "0.5"], 120, check=False).stdout
            top = [re.sub(r"\s+-\s+-\s*$", "", l).rstrip() for l in rep.splitlines()
                   if l.strip() and not l.startswith("#")][:args.top]
            by_dso = [l.strip() for l in dso.splitlines() if l.strip() and not l.startswith("#")]
            summary = ", ".join(f"{k}={v:.3g}" for k, v in res.items() if isinstance(v, float))
            out.append(f"#### {px.label}: {name}\n\n{summary}\n\nby DSO: " + "; ".join(by_dso) + "\n")
            out.append("```\n" + "\n".join(top) + "\n```\n")
            if args.strace:
                out.append(syscalls(px, action))
    return "\n".join(out)


def syscalls(px, action):
    """System calls of the proxy (all threads) per request or per MiB, from `strace -c` (slows it)."""
    data = f"{TMP}/strace-{px.key}.txt"
    tracer = subprocess.Popen(["strace", "-f", "-c", "-q", "-o", data, "-p", str(px.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    res = action(px)
    os.kill(tracer.pid, signal.SIGINT)
    tracer.wait(60)
    units, name = (res["requests"], "request") if "requests" in res else (res["bytes"] / 2**20, "MiB")
    rows = []
    with open(data) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and re.match(r"[\d.]+$", cols[0]) and cols[-1] != "total":
                rows.append((int(cols[3]), cols[-1]))
    rows.sort(reverse=True)
    total = sum(c for c, _ in rows)
    top = ", ".join(f"{n} {c / max(units, 1e-9):.2f}" for c, n in rows[:8])
    return f"syscalls per {name} (strace -c, separate traced run): total {total / max(units, 1e-9):.2f}; {top}\n"


# ---------------------------------------------------------------- main

def main():
    global TMP, WWW, PROXY_CPUS, LOAD_CPUS, ALL_CPUS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--binary")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--duration", type=int)
    ap.add_argument("--profile", nargs="?", const="tb1",
                    help="instead of the benchmark: perf profiles of these proxies (comma list of "
                         "tb1,haproxy,stunnel,tb2; default tb1) under each workload")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--percent-limit", type=float, default=1.0, help="with --profile: smallest share of a symbol listed")
    ap.add_argument("--strace", action="store_true", help="with --profile: also count syscalls per unit")
    ap.add_argument("--workloads", help="with --profile: only these (comma list of keepalive,resume,full,"
                                        "download,upload)")
    ap.add_argument("--no-perf", action="store_true",
                    help="with --profile: no perf, just the figures of each workload, --reps times interleaved")
    args = ap.parse_args()
    args.reps = args.reps or 3
    args.duration = args.duration or (2 if args.quick else 10)
    big = (256 if args.quick else 1024) << 20
    up = (64 if args.quick else 256) << 20
    idle_n = 2000
    idle_reps = 1 if args.quick else args.reps

    global LOAD_START
    LOAD_START = open("/proc/loadavg").read().split()[0]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    base = "/dev/shm" if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 3 * big else None
    TMP = tempfile.mkdtemp(prefix="tls-bridge-bench-", dir=base)
    WWW = f"{TMP}/www"
    try:
        ncpu = os.cpu_count() or 1
        if ncpu >= 2:
            PROXY_CPUS, LOAD_CPUS, ALL_CPUS = "0", "1", "0,1"
            pinning = ("each proxy alone on CPU 0; nginx, wrk/curl and this driver on CPU 1"
                       + ("" if ncpu == 2 else f" (CPUs 2–{ncpu - 1} unused)"))
        else:
            PROXY_CPUS = LOAD_CPUS = ALL_CPUS = "0"
            pinning = "none possible (1 CPU): proxy, nginx and load generator share CPU 0"
        os.sched_setaffinity(0, {int(LOAD_CPUS)})

        binary = args.binary or os.path.join(args.root, ".build/release/tls-bridge")
        shutil.copy(binary, f"{TMP}/tls-bridge")   # the tree may be rebuilt while we run
        soft, hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)
        if soft < 2 * idle_n + 200:
            idle_n = max(100, (soft - 200) // 2)
            log(f"open-file limit {soft}: idle test reduced to {idle_n} sessions")

        log(f"temp dir {TMP}; certificates and {big >> 20} MiB + {up >> 20} MiB test files")
        make_certs(TMP)
        digests = make_files(WWW, big, up)
        ports = {"resume_port": free_port(), "full_port": free_port(), "plain_port": free_port()}
        with open(f"{TMP}/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(tmp=TMP, www=WWW, nofile=soft, **ports))
        nginx = start("nginx", ["nginx", "-e", f"{TMP}/nginx-error.log", "-p", TMP, "-c", f"{TMP}/nginx.conf"],
                      LOAD_CPUS)
        for p in ports.values():
            wait_port(p, nginx, "nginx")

        proxies = [Proxy("tb1", "tls-bridge"), Proxy("haproxy", "HAProxy"), Proxy("stunnel", "stunnel"),
                   Proxy("tb2", "tls-bridge ×2"), Proxy("relay", "plain relay", tls=False)]
        if args.profile:
            wanted = args.profile.split(",")
            proxies = [p for p in proxies if p.key in wanted]
        for px in proxies:
            launch(px, ports)
        tls = [p for p in proxies if p.tls]

        versions = []
        for argv, pat in ((["haproxy", "-v"], r"HAProxy version (\S+)"), (["stunnel", "-version"], r"stunnel (\S+)"),
                          (["nginx", "-v"], r"nginx/(\S+)"), (["openssl", "version"], r"OpenSSL (\S+)"),
                          (["wrk", "--version"], r"wrk (\S+)")):
            r = subprocess.run(argv, capture_output=True, text=True)
            m = re.search(pat, r.stdout + r.stderr)
            versions.append(f"{argv[0]} {m.group(1) if m else '?'}")
        r = subprocess.run([f"{TMP}/tls-bridge", "version"], capture_output=True, text=True)
        versions.insert(0, (r.stdout.strip().splitlines() or ["tls-bridge ?"])[0])
        cpu_model = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        info = {"load_start": LOAD_START, "date": datetime.date.today().isoformat(), "nproc": ncpu, "cpu": cpu_model,
                "kernel": platform.release(), "pinning": pinning, "versions": ", ".join(versions),
                "big_label": f"{big >> 20} MiB" if big < 1 << 30 else f"{big >> 30} GiB",
                "up_label": f"{up >> 20} MiB", "idle": idle_n}

        if args.profile:
            for px in proxies:
                wrk(px, px.l_resume, 1, close=False)
            text = profile(proxies, args, digests)
            print(text)
            if args.out:
                with open(args.out, "w") as f:
                    f.write(text)
            return

        log("warm-up")
        for px in proxies:
            wrk(px, px.l_resume, 1, close=False)
            if px.tls:
                wrk(px, px.l_full, 1, close=True)

        R = {}

        def add(test, key, res):
            R.setdefault(test, {}).setdefault(key, []).append(res)

        for rep in range(args.reps):
            log(f"repetition {rep + 1}/{args.reps}: keep-alive")
            for px in proxies:
                add("keepalive", px.key, wrk(px, px.l_resume, args.duration, close=False))
            log(f"repetition {rep + 1}/{args.reps}: new connections, resumption available")
            for px in tls:
                add("nc_resume", px.key, new_connections(px, "resume", args.duration))
            log(f"repetition {rep + 1}/{args.reps}: new connections, full handshakes")
            for px in tls:
                add("nc_full", px.key, new_connections(px, "full", args.duration))
            log(f"repetition {rep + 1}/{args.reps}: bulk")
            for px in proxies:
                add("download", px.key, curl_transfer(px, False, rep == 0, digests, "big.bin"))
            for px in proxies:
                add("upload", px.key, curl_transfer(px, True, rep == 0, digests, "big.bin"))
            if rep < idle_reps:
                log(f"repetition {rep + 1}/{args.reps}: {idle_n} idle sessions")
                for px in tls:
                    # a fresh process each time: a warm heap would hide the memory of new sessions
                    fresh = Proxy(px.key, px.label)
                    launch(fresh, ports, suffix=f"-idle{rep}")
                    try:
                        add("idle", px.key, idle_memory(fresh, idle_n, ports["full_port"]))
                    finally:
                        stop(fresh.proc)

        log("physical limits")
        lim = physical_limits(1 if args.quick else 3)
        for px in proxies:
            if px.proc.poll() is not None:
                log(f"warning: {px.label} exited during the run ({px.proc.returncode})")
        info["load_end"] = open("/proc/loadavg").read().split()[0]
        text = report(R, args, info, lim)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"info": info, "limits": lim, "results": R}, f, indent=1)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
