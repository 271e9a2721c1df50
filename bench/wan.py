#!/usr/bin/env python3
"""tls-bridge WAN benchmark driver (issue #17); run it through bench/wan, which installs and builds first.

What a payment call costs over a simulated WAN, in round trips: nginx plays the far-away gateway,
bench/delay_relay.py plays the WAN in front of it (this kernel has no `tc netem`), and sporadic
payment-module-style calls (curl, HTTP/1.0 POST, new connection per call) go through each target in
turn: tls-bridge without and with pre-opened upstream connections, stunnel, HAProxy, and a modern
client that speaks TLS to the gateway itself. Every process it starts is stopped by PID when it
exits; everything listens on 127.0.0.1 only.
"""
import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (process handling)

TMP = None
BODY = b"merchant=M1042&order=A-20261203-0042&amount=1980&currency=JPY&card_token=tok_5f2c9a1e7d"
REPLY = '{"status":"approved","auth":"A1B2C3"}'
PROXY_CPUS, LOAD_CPUS = "0", "1"


# ---------------------------------------------------------------- processes

def log(msg):
    print(f"[wan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Process handling is bench.py's (the same PID bookkeeping, stop by PID, temp dir cleanup):
# main() points bench.TMP at this run's directory.
start, stop, cleanup, on_signal = B.start, B.stop, B.cleanup, B.on_signal
run, free_port, wait_port, tail = B.run, B.free_port, B.wait_port, B.tail


# ---------------------------------------------------------------- the gateway

def make_certs(d):
    def ossl(*args):
        run(["openssl", *args], 60)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
         "-days", "2", "-subj", "/CN=WAN Bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, cn, ext in (("server", "gateway.test", "subjectAltName=DNS:gateway.test\nextendedKeyUsage=serverAuth\n"),
                          ("client", "merchant-1042", "extendedKeyUsage=clientAuth\n")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
             "-subj", f"/CN={cn}")
        with open(f"{d}/{name}-ext.cnf", "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" + ext)
        ossl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
             "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "2", "-sha256", "-extfile", f"{d}/{name}-ext.cnf")
    with open(f"{d}/client-combined.pem", "w") as out:      # HAProxy's `crt` wants cert and key in one file
        for part in ("client.pem", "client.key"):
            with open(f"{d}/{part}") as f:
                out.write(f.read())
    with open(f"{d}/body", "wb") as f:
        f.write(BODY)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/nginx-error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    # one line per request: which port (= which target), TLS version, resumed or not
    log_format calls '$server_port $ssl_protocol $ssl_session_reused $connection_requests $status';
    access_log {tmp}/gateway-access.log calls;
    server {{
{listens}
        server_name gateway.test;
        ssl_certificate {tmp}/server.pem;
        ssl_certificate_key {tmp}/server.key;
        ssl_protocols {protocols};
        ssl_session_cache shared:WAN:10m;
        ssl_session_tickets on;
        ssl_session_timeout 1h;
        ssl_verify_client {verify_client};
        ssl_client_certificate {tmp}/ca.pem;
        default_type application/json;
        location = /pay {{
            if ($request_method != POST) {{ return 405; }}
            return 200 '{reply}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


# ---------------------------------------------------------------- the targets

TB_CONF = """workers = 1

[log]
sessions = "{tmp}/{key}-sessions.jsonl"
level = "warning"

[[upstream]]
name = "gateway"
address = "127.0.0.1:{relay_port}"
server_name = "gateway.test"
ca_file = "{tmp}/ca.pem"
client_cert = "{tmp}/client.pem"
client_key = "{tmp}/client.key"
min_version = "TLS1.2"
{extra}
[[listener]]
name = "payments"
listen = "127.0.0.1:{port}"
upstream = "gateway"
"""

STUNNEL_CONF = """foreground = yes
pid =
output = {tmp}/stunnel.log
debug = 3
[gateway]
client = yes
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{relay_port}
CAfile = {tmp}/ca.pem
verifyChain = yes
checkHost = gateway.test
sni = gateway.test
sslVersionMin = TLSv1.2
cert = {tmp}/client.pem
key = {tmp}/client.key
"""

HAPROXY_CONF = """global
    nbthread 1
    ssl-server-verify required
defaults
    mode tcp
    timeout connect 10s
    timeout client 35s
    timeout server 35s
frontend payments
    bind 127.0.0.1:{port}
    default_backend gateway
backend gateway
    server gw 127.0.0.1:{relay_port} ssl verify required ca-file {tmp}/ca.pem crt {tmp}/client-combined.pem sni str(gateway.test) verifyhost gateway.test ssl-min-ver TLSv1.2
"""


class Target:
    def __init__(self, key, label):
        self.key, self.label = key, label
        self.port = free_port()          # where the payment module connects (unused by "direct")
        self.relay_port = free_port()    # the relay port in front of this target's gateway port
        self.gateway_port = free_port()  # nginx's port for this target (tells the targets apart in its log)
        self.proc = None
        self.available = True
        self.note = ""


def preconnect_lines(n, max_age):
    lines = []
    if n is not None:
        lines.append(f"preconnect = {n}")
    if max_age:
        lines.append(f'preconnect_max_age = "{max_age}"')
    return "\n".join(lines) + ("\n" if lines else "")


def tb_config(t, extra):
    path = f"{TMP}/{t.key}.toml"
    with open(path, "w") as f:
        f.write(TB_CONF.format(tmp=TMP, key=t.key, relay_port=t.relay_port, port=t.port, extra=extra))
    return path


def tb_check(path):
    """(ok, message) of `tls-bridge check` on a config."""
    r = run([f"{TMP}/tls-bridge", "check", "--config", path], 60, check=False,
            env=dict(os.environ, SWIFT_BACKTRACE="enable=no"))
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def launch(t, args):
    fill = dict(tmp=TMP, port=t.port, relay_port=t.relay_port)
    if t.key in ("tb_off", "tb_on"):
        if t.key == "tb_off":
            path = tb_config(t, preconnect_lines(0, None))
            ok, msg = tb_check(path)
            if not ok and "preconnect" in msg:
                # No such key in this build: the feature does not exist, which is "off" too.
                path = tb_config(t, "")
                t.note = "without the key: this build has no `preconnect`"
                ok, msg = tb_check(path)
        else:
            n = None if args.preconnect == "default" else int(args.preconnect)
            path = tb_config(t, preconnect_lines(n, args.preconnect_max_age))
            ok, msg = tb_check(path)
            if not ok and "preconnect" in msg:
                t.available = False
                t.note = "not available in this build"
                first = next((line for line in msg.splitlines() if "preconnect" in line), msg[:200])
                log(f"{t.label}: {t.note} ({first.strip()})")
                return
        if not ok:
            raise RuntimeError(f"{t.label}: tls-bridge check refused its config:\n{msg}")
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
        t.proc = start(t.key, [f"{TMP}/tls-bridge", "run", "--config", path], PROXY_CPUS, env=env)
    elif t.key == "stunnel":
        with open(f"{TMP}/stunnel.conf", "w") as f:
            f.write(STUNNEL_CONF.format(**fill))
        t.proc = start(t.key, ["stunnel", f"{TMP}/stunnel.conf"], PROXY_CPUS)
    elif t.key == "haproxy":
        with open(f"{TMP}/haproxy.cfg", "w") as f:
            f.write(HAPROXY_CONF.format(**fill))
        t.proc = start(t.key, ["haproxy", "-db", "-f", f"{TMP}/haproxy.cfg"], PROXY_CPUS)
    else:
        return                           # the modern client needs no process of its own
    wait_port(t.port, t.proc, t.label)


# ---------------------------------------------------------------- one call

CURL_W = "%{http_code} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}"


def call(t):
    """One payment call through target `t`, new connection, like the gateway's PHP module."""
    out = f"{TMP}/reply-{t.key}-{threading.get_ident()}"
    common = ["curl", "-sS", "-X", "POST", "--data-binary", f"@{TMP}/body",
              "-H", "Content-Type: application/x-www-form-urlencoded", "--max-time", "35",
              "-o", out, "-w", CURL_W]
    if t.key == "direct":
        argv = common + ["--http1.1", "--tlsv1.2", "--cacert", f"{TMP}/ca.pem",
                         "--cert", f"{TMP}/client.pem", "--key", f"{TMP}/client.key",
                         "--resolve", f"gateway.test:{t.relay_port}:127.0.0.1",
                         f"https://gateway.test:{t.relay_port}/pay"]
    else:
        argv = common + ["--http1.0", "-H", "Host: gateway.test", f"http://127.0.0.1:{t.port}/pay"]
    try:
        os.unlink(out)
    except FileNotFoundError:
        pass
    r = run(argv, 40, cpus=LOAD_CPUS, check=False)
    sample = {"at": time.time(), "exit": r.returncode, "error": r.stderr.strip()[-200:]}
    parts = r.stdout.split()
    if len(parts) == 5:
        sample.update(code=int(parts[0]), connect_ms=float(parts[1]) * 1e3, tls_ms=float(parts[2]) * 1e3,
                      first_byte_ms=float(parts[3]) * 1e3, total_ms=float(parts[4]) * 1e3)
    try:
        with open(out) as f:
            body = f.read()
    except OSError:
        body = ""
    sample["ok"] = r.returncode == 0 and sample.get("code") == 200 and body == REPLY
    return sample


# ---------------------------------------------------------------- gateway-side counts

def relay_accepts(path):
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("accept "):
                    port = int(line.split()[1])
                    counts[port] = counts.get(port, 0) + 1
    except OSError:
        pass
    return counts


def gateway_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def session_records(t):
    """The session records a tls-bridge target has written so far (its JSON lines, in order)."""
    recs = []
    try:
        with open(f"{TMP}/{t.key}-sessions.jsonl") as f:
            for line in f:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    return recs


def spare_ages(recs):
    """Ages (ms) of the pre-opened connections those sessions got: `upstream.spare_age_ms`, which
    the record leaves null for a session that dialled the gateway itself."""
    ages = []
    for rec in recs:
        up = rec.get("upstream") if isinstance(rec.get("upstream"), dict) else {}
        if up.get("spare_age_ms") is not None:
            ages.append(up["spare_age_ms"])
    return ages


# ---------------------------------------------------------------- one RTT

def quantile(xs, q):
    """Linear interpolation between closest ranks (statistics.quantiles' inclusive method)."""
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def measure_rtt(rtt_ms, targets, args, rng):
    live = [t for t in targets if t.available]
    stats_path = f"{TMP}/relay-{rtt_ms:g}.stats.json"
    name = f"relay-{rtt_ms:g}"
    maps = [f"--map={t.relay_port}:127.0.0.1:{t.gateway_port}" for t in targets]
    relay = start(name, [sys.executable, os.path.join(HERE, "delay_relay.py"), "--rtt-ms", f"{rtt_ms:g}",
                         "--stats", stats_path, "--max-seconds",
                         str((args.calls + args.steady_calls) * len(targets) * 5 + 600)] + maps,
                  LOAD_CPUS)
    for t in targets:
        wait_port(t.relay_port, relay, "delay relay")
    log(f"RTT {rtt_ms:g} ms: warm-up (one call per target)")
    for t in live:
        s = call(t)
        if not s["ok"]:
            raise RuntimeError(f"{t.label}: warm-up call failed: {s}\n{tail(t.key) if t.proc else ''}")
        time.sleep(0.3)
    # Room for pre-opened connections to be (re)made: the relay (re)started under them, so a bridge
    # may be in its back-off after a refused or closed spare.
    time.sleep(max(3.0, 5 * rtt_ms / 1000))
    relay_out = os.path.join(TMP, f"{name}.out")
    phases = {"sporadic": run_phase(live, relay_out, lambda samples: sporadic(live, samples, args, rng))}
    if args.steady:
        phases["steady"] = {}
        for t in live:
            time.sleep(2.0)              # the previous target's load is over; spares refilled
            ph = run_phase([t], relay_out, lambda samples, t=t: steady(t, samples, args))
            for key in ("rows", "samples"):
                phases["steady"].setdefault(key, {}).update(ph[key])
            phases["steady"]["seconds"] = phases["steady"].get("seconds", 0) + ph["seconds"]
    stop(relay)
    try:
        with open(stats_path) as f:
            lateness = json.load(f)
    except (OSError, ValueError):
        lateness = {}
    for t in live:
        if t.proc is not None and t.proc.poll() is not None:
            log(f"warning: {t.label} exited during the run ({t.proc.returncode})")
    return {"rtt_ms": rtt_ms, "phases": phases, "relay_lateness": lateness}


def sporadic(live, samples, args, rng):
    """Calls one at a time, every target in turn (order rotated each round), a random pause after each."""
    log(f"  sporadic: {args.calls} calls per target, interleaved, {pause_text(args)} apart")
    for i in range(args.calls):
        order = live[i % len(live):] + live[:i % len(live)]    # rotate: no target always goes first
        for t in order:
            s = call(t)
            s["round"] = i
            samples[t.key].append(s)
            if not s["ok"]:
                log(f"  {t.label}: call {i + 1} failed: exit {s['exit']} code {s.get('code')} {s['error']}")
            time.sleep(rng.uniform(args.pause_min, args.pause_max))
        if (i + 1) % 10 == 0:
            log(f"  {i + 1}/{args.calls} rounds")


def steady(t, samples, args):
    """`args.steady_calls` calls to one target started at a fixed rate, each on its own thread (they
    overlap when a call lasts longer than the interval)."""
    log(f"  steady: {t.label}, {args.steady_calls} calls at {args.steady:g}/s")
    lock = threading.Lock()

    def one(i):
        s = call(t)
        s["round"] = i
        with lock:
            samples[t.key].append(s)
        if not s["ok"]:
            log(f"  {t.label}: steady call {i + 1} failed: exit {s['exit']} code {s.get('code')} {s['error']}")

    threads = []
    t0 = time.monotonic()
    for i in range(args.steady_calls):
        delay = t0 + i / args.steady - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        th = threading.Thread(target=one, args=(i,), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(45)


def run_phase(live, relay_out, body):
    """Runs `body(samples)` and sums up what the gateway and the records saw meanwhile, per target."""
    accepts0 = relay_accepts(relay_out)
    gw0 = len(gateway_lines(f"{TMP}/gateway-access.log"))
    records0 = {t.key: len(session_records(t)) for t in live if t.key.startswith("tb_")}
    samples = {t.key: [] for t in live}
    started = time.time()
    body(samples)
    elapsed = time.time() - started
    time.sleep(0.5)
    accepts1 = relay_accepts(relay_out)
    gw_lines = gateway_lines(f"{TMP}/gateway-access.log")[gw0:]
    rows = {}
    for t in live:
        ss = samples[t.key]
        oks = [s["total_ms"] for s in ss if s["ok"]]
        conns = accepts1.get(t.relay_port, 0) - accepts0.get(t.relay_port, 0)
        mine = [l.split() for l in gw_lines if l.split()[:1] == [str(t.gateway_port)]]
        resumed = sum(1 for l in mine if len(l) > 2 and l[2] == "r")
        protos = sorted({l[1] for l in mine if len(l) > 1})
        row = {"calls": len(ss), "failed": len(ss) - len(oks),
               "gateway_connections": conns, "gateway_requests": len(mine),
               "resumed": resumed, "protocols": protos}
        if oks:
            row.update(median_ms=statistics.median(oks), p90_ms=quantile(oks, 0.9), max_ms=max(oks),
                       min_ms=min(oks))
        if t.key in records0:
            recs = session_records(t)[records0[t.key]:]
            ages = spare_ages(recs)
            row.update(records=len(recs), preconnected=len(ages),
                       spare_age_median_ms=statistics.median(ages) if ages else None)
        rows[t.key] = row
    return {"rows": rows, "samples": samples, "seconds": elapsed}


# ---------------------------------------------------------------- report

def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def pause_text(args):
    if args.pause_min == args.pause_max:
        return f"{args.pause_min:g} s"
    return f"{args.pause_min:g}–{args.pause_max:g} s (random)"


def phase_table(ph, targets, rtt):
    out = ["| target | calls (failed) | median ms | p90 ms | max ms | median RTTs | p90 RTTs | "
           "gateway TLS connections per call | resumed | TLS | goal (≤ 1.3 / ≤ 1.5 RTT) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in targets:
        if not t.available:
            out.append(f"| {t.label} | {t.note} | | | | | | | | | |")
            continue
        r = ph["rows"][t.key]
        med, p90 = r.get("median_ms"), r.get("p90_ms")
        mr = med / rtt if med is not None else None
        pr = p90 / rtt if p90 is not None else None
        goal = "–"
        if t.key == "tb_on":
            if mr is None:
                goal = "**missed**: every call failed"
            else:
                ok = mr <= 1.3 and pr <= 1.5 and r["failed"] == 0
                goal = "met" if ok else "**missed**" + (f": {r['failed']} failed" if r["failed"] else "")
        label = t.label + (f" ({t.note})" if t.note else "")
        if r.get("records"):
            label += f"; {r['preconnected']} of {r['records']} sessions got a spare"
            if r.get("spare_age_median_ms") is not None:
                label += f" (median age {r['spare_age_median_ms'] / 1000:.1f} s)"
        per_call = r["gateway_connections"] / r["calls"] if r["calls"] else None
        resumed = f"{r['resumed']}/{r['gateway_requests']}" if r["gateway_requests"] else "–"
        out.append(f"| {label} | {r['calls']} ({r['failed']}) | {fmt(med)} | {fmt(p90)} | "
                   f"{fmt(r.get('max_ms'))} | {fmt(mr, 2)} | {fmt(pr, 2)} | {fmt(per_call, 2)} | {resumed} | "
                   f"{', '.join(r['protocols']) or '–'} | {goal} |")
    out.append("")
    return out


def report(results, targets, args, info):
    out = [f"### WAN benchmark, {info['date']} ({'quick' if args.quick else 'full'} run)\n",
           f"Machine: {info['nproc']} CPUs, Linux {info['kernel']}; pinning: {info['pinning']}. "
           f"Load average {info['load_start']} at the start, {info['load_end']} at the end.",
           f"Versions: {info['versions']}.",
           f"Per RTT: {args.calls} payment calls per target (curl, HTTP/1.0 POST of {len(BODY)} bytes, new "
           f"connection per call, 35 s timeout), interleaved across targets in rotating order, "
           f"{pause_text(args)} pause after every call. Time = curl's `time_total`; "
           "p90 interpolated between closest ranks. Gateway: nginx, "
           f"{ {'both': 'TLS 1.2/1.3', '1.2': 'TLS 1.2 only', '1.3': 'TLS 1.3 only'}[args.gateway_tls] }, "
           "session cache and tickets on, client certificate "
           f"{'not asked for' if args.no_client_cert else 'required'}. tls-bridge with pre-opened connections: "
           f"{info['preconnect_desc']}.\n"]
    for res in results:
        rtt = res["rtt_ms"]
        lat = res["relay_lateness"]
        for phase, ph in res["phases"].items():
            if phase == "sporadic":
                out.append(f"#### RTT {rtt:g} ms, sporadic calls\n")
            else:
                out.append(f"#### RTT {rtt:g} ms, steady rate: {args.steady_calls} calls per target at "
                           f"{args.steady:g} calls/s, one target at a time\n")
            out.extend(phase_table(ph, targets, rtt))
        seconds = sum(ph["seconds"] for ph in res["phases"].values())
        out.append(f"Relay at RTT {rtt:g} ms: {lat.get('writes', 0)} delayed writes, late against their due "
                   f"time by {fmt(lat.get('median_ms'), 2)} ms median, {fmt(lat.get('p99_ms'), 2)} ms p99, "
                   f"{fmt(lat.get('max_ms'), 2)} ms max; {seconds:.0f} s of calls.\n")
    out.append("Columns: *gateway TLS connections per call* counts connections the relay accepted for the "
               "target during the calls (spares included) divided by its calls: above 1.00, spares were "
               "opened and never used; *resumed* = requests nginx "
               "saw on a resumed TLS session / all its requests for the target. A goal row is met when "
               "median ≤ 1.3 RTT, p90 ≤ 1.5 RTT and no call failed.")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

ALL_TARGETS = [("tb_off", "tls-bridge, preconnect off"), ("tb_on", "tls-bridge, preconnect on"),
               ("stunnel", "stunnel"), ("haproxy", "HAProxy tcp"), ("direct", "modern client, direct")]


def main():
    global TMP, PROXY_CPUS, LOAD_CPUS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--quick", action="store_true", help="10 calls per target instead of 30")
    ap.add_argument("--calls", type=int, help="calls per target and RTT (default 30, 10 with --quick)")
    ap.add_argument("--rtt-ms", default="40", help="round-trip time in ms, or a comma list (e.g. 10,40,150)")
    ap.add_argument("--pause", default="0.5-1.0", help="pause after each call, seconds: MIN-MAX (random) or one value")
    ap.add_argument("--targets", default=",".join(k for k, _ in ALL_TARGETS),
                    help="comma list of " + ",".join(k for k, _ in ALL_TARGETS))
    ap.add_argument("--preconnect", default="1", help="`preconnect` for the tb_on target (an integer, or "
                                                      "`default` to leave the key out)")
    ap.add_argument("--preconnect-max-age", help="`preconnect_max_age` for the tb_on target (e.g. 15s)")
    ap.add_argument("--gateway-tls", choices=["both", "1.2", "1.3"], default="both",
                    help="TLS versions the gateway accepts (default both 1.2 and 1.3)")
    ap.add_argument("--no-client-cert", action="store_true",
                    help="the gateway asks for no client certificate (the targets still have one)")
    ap.add_argument("--steady", type=float, metavar="RATE",
                    help="after the sporadic calls, the same number per target at RATE calls/s, one target "
                         "at a time (how many spares a busy bridge wastes)")
    ap.add_argument("--steady-calls", type=int, metavar="N",
                    help="calls per target in the steady phase (default: --calls); spares left open when the "
                         "phase ends count as wasted, so a longer phase shows the steady state")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--binary")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    args.calls = args.calls or (10 if args.quick else 30)
    args.steady_calls = args.steady_calls or args.calls
    lo, _, hi = args.pause.partition("-")
    args.pause_min, args.pause_max = float(lo), float(hi or lo)
    rtts = [float(x) for x in args.rtt_ms.split(",") if x.strip()]
    if args.steady is not None and args.steady <= 0:
        ap.error("--steady: a positive rate (calls per second)")
    if not rtts or any(r <= 0 for r in rtts):
        ap.error("--rtt-ms: positive numbers of milliseconds")
    wanted = args.targets.split(",")
    unknown = [w for w in wanted if w not in dict(ALL_TARGETS)]
    if unknown:
        ap.error(f"--targets: unknown {', '.join(unknown)}")

    load_start = open("/proc/loadavg").read().split()[0]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    TMP = tempfile.mkdtemp(prefix="tls-bridge-wan-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    B.TMP = TMP  # bench.start, tail and cleanup use it
    try:
        ncpu = os.cpu_count() or 1
        if ncpu >= 2:
            pinning = "proxies on CPU 0; nginx, the delay relay, curl and this driver on CPU 1"
        else:
            PROXY_CPUS = LOAD_CPUS = "0"
            pinning = "none possible (1 CPU)"
        os.sched_setaffinity(0, {int(LOAD_CPUS)})
        binary = args.binary or os.path.join(args.root, ".build/release/tls-bridge")
        shutil.copy(binary, f"{TMP}/tls-bridge")    # the tree may be rebuilt while we run
        log(f"temp dir {TMP}; certificates")
        make_certs(TMP)

        targets = [Target(k, label) for k, label in ALL_TARGETS if k in wanted]
        verify_client = "off" if args.no_client_cert else "on"
        listens = "\n".join(f"        listen 127.0.0.1:{t.gateway_port} ssl;" for t in targets)
        with open(f"{TMP}/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(tmp=TMP, listens=listens, reply=REPLY, verify_client=verify_client,
                                      protocols={"both": "TLSv1.2 TLSv1.3", "1.2": "TLSv1.2",
                                                 "1.3": "TLSv1.3"}[args.gateway_tls]))
        nginx = start("nginx", ["nginx", "-e", f"{TMP}/nginx-error.log", "-p", TMP, "-c", f"{TMP}/nginx.conf"],
                      LOAD_CPUS)
        for t in targets:
            wait_port(t.gateway_port, nginx, "nginx")
        for t in targets:
            launch(t, args)

        versions = []
        r = subprocess.run([f"{TMP}/tls-bridge", "version"], capture_output=True, text=True)
        versions.append((r.stdout.strip().splitlines() or ["tls-bridge ?"])[0])
        for argv, pat in ((["stunnel", "-version"], r"stunnel (\S+)"), (["haproxy", "-v"], r"HAProxy version (\S+)"),
                          (["nginx", "-v"], r"nginx/(\S+)"), (["curl", "--version"], r"curl (\S+)"),
                          (["openssl", "version"], r"OpenSSL (\S+)")):
            r = subprocess.run(argv, capture_output=True, text=True)
            m = re.search(pat, r.stdout + r.stderr)
            versions.append(f"{argv[0]} {m.group(1) if m else '?'}")
        pre = "preconnect key left out (the build's default)" if args.preconnect == "default" \
            else f"`preconnect = {args.preconnect}`"
        if args.preconnect_max_age:
            pre += f", `preconnect_max_age = \"{args.preconnect_max_age}\"`"
        info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "nproc": ncpu,
                "kernel": platform.release(), "pinning": pinning, "versions": ", ".join(versions),
                "load_start": load_start, "preconnect_desc": pre}

        rng = random.Random(args.seed)
        results = [measure_rtt(rtt, targets, args, rng) for rtt in rtts]
        info["load_end"] = open("/proc/loadavg").read().split()[0]
        text = report(results, targets, args, info)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"info": info, "targets": {t.key: {"label": t.label, "available": t.available,
                                                             "note": t.note} for t in targets},
                           "results": results}, f, indent=1)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
