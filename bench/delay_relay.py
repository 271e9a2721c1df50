#!/usr/bin/env python3
"""A TCP relay on loopback that adds a fixed round-trip time, for bench/wan (issue #17).

This kernel has no `tc netem`, so the WAN between the merchant's host and the gateway is played in
user space: each `--map LISTEN_PORT:TARGET_HOST:TARGET_PORT` accepts connections on 127.0.0.1 and
relays them to the target with these delays (RTT = `--rtt-ms`, t0 = when the dialler's connect()
was accepted):

- connection setup costs one RTT: the onward connection is opened at t0 + RTT/2 (when the SYN would
  reach the gateway), and no byte of the dialler leaves the relay before t0 + RTT (when the SYN-ACK
  would have come back to the dialler) + RTT/2;
- every chunk read from one side is written to the other side RTT/2 after it was read (or after the
  earliest time above), in order, in each direction independently;
- an orderly close (FIN) travels like data: RTT/2 later, after the bytes before it, as a
  shutdown(SHUT_WR) of the other side; a reset (or a socket error) reaches the other side RTT/2
  later as a reset; a refused onward connect reaches the dialler as a reset at t0 + RTT.

What it does not model: bandwidth (the delay is the same for 10 bytes and 10 MB: no serialisation
time, no queueing), loss and retransmission, TCP's congestion window (a reply larger than the
initial window, ~14 KB, would cost a real path extra round trips; a TLS handshake and a payment
reply fit well inside it), jitter (every chunk gets the same delay), and a dialler's own view of
its connect(): the loopback connect() to the relay returns at once, so a dialler that times its
TCP connect sees ~0 and the round trip shows up on its first bytes instead. Writes are timed with
the monotonic clock and `time.sleep` (clock_nanosleep); how late each write was against its due
time is measured and written to `--stats` when the relay stops, so a report can say how exact the
delay was.

Every accepted connection is logged on stdout as `accept LISTEN_PORT <monotonic seconds>`, which is
how a driver counts the connections (TLS handshakes) the gateway received per listen port.
Threads: one acceptor per listen port, and per connection one connector plus a reader and a writer
per direction. The process ends on SIGTERM/SIGINT, or by itself after `--max-seconds`.
"""
import argparse
import collections
import json
import signal
import socket
import struct
import sys
import threading
import time

IDLE_TIMEOUT = 600.0          # a silent connection is dropped after this long (both sides reset)
LATENESS = []                 # (seconds late against the due time, direction, kind) of each write
LATENESS_LOCK = threading.Lock()
MAX_LATENESS_SAMPLES = 200_000


def log(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def reset(sock):
    """Closes `sock` with a TCP reset (SO_LINGER 0). SHUT_RD first wakes a reader thread blocked in
    recv() on it (sends nothing): closing the descriptor alone would not, and the kernel would keep
    the socket, and send no reset, until that recv() returned."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def sleep_until(due):
    while True:
        left = due - time.monotonic()
        if left <= 0:
            return
        time.sleep(left)


class Direction:
    """Bytes read from `src` and written to `dst` half an RTT later, in order."""

    EOF, RESET = object(), object()

    def __init__(self, conn, name, src, half, not_before):
        self.conn, self.name, self.src, self.half = conn, name, src, half
        self.not_before = not_before
        self.queue = collections.deque()
        self.ready = threading.Condition()

    def read_loop(self):
        while True:
            try:
                data = self.src.recv(65536)
                item = data if data else Direction.EOF
            except OSError:              # reset, timeout, or the socket was torn down
                item = Direction.RESET
            due = max(time.monotonic(), self.not_before) + self.half
            with self.ready:
                self.queue.append((due, item))
                self.ready.notify()
            if not isinstance(item, bytes):
                return

    def write_loop(self, dst_ready, dst_of):
        dst_ready.wait(IDLE_TIMEOUT)
        dst = dst_of()
        while True:
            with self.ready:
                if not self.ready.wait_for(lambda: self.queue, IDLE_TIMEOUT):
                    self.conn.abort()
                    return
                due, item = self.queue.popleft()
            sleep_until(due)
            late = time.monotonic() - due
            kind = "data" if isinstance(item, bytes) else ("eof" if item is Direction.EOF else "reset")
            with LATENESS_LOCK:
                if len(LATENESS) < MAX_LATENESS_SAMPLES:
                    LATENESS.append((late, self.name, kind))
            if dst is None:
                return
            if item is Direction.RESET:
                self.conn.abort()
                return
            if item is Direction.EOF:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                self.conn.direction_done()
                return
            try:
                dst.sendall(item)
            except OSError:
                self.conn.abort()
                return


class Connection:
    def __init__(self, client, target, rtt):
        self.client, self.target, self.rtt = client, target, rtt
        self.upstream = None
        self.connected = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.closed = False

    def start(self):
        t0 = time.monotonic()
        half = self.rtt / 2
        self.client.settimeout(IDLE_TIMEOUT)
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = Direction(self, "up", self.client, half, t0 + self.rtt)
        self.up = up
        threading.Thread(target=up.read_loop, daemon=True).start()
        threading.Thread(target=up.write_loop, args=(self.connected, lambda: self.upstream), daemon=True).start()
        threading.Thread(target=self.connect, args=(t0, half), daemon=True).start()

    def connect(self, t0, half):
        sleep_until(t0 + half)
        try:
            s = socket.create_connection(self.target, timeout=10)
            s.settimeout(IDLE_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self.connected.set()
            sleep_until(t0 + self.rtt)       # the refusal travels back to the dialler
            self.abort()
            return
        self.upstream = s
        self.connected.set()
        down = Direction(self, "down", s, half, 0.0)
        threading.Thread(target=down.read_loop, daemon=True).start()
        threading.Thread(target=down.write_loop, args=(self.connected, lambda: self.client), daemon=True).start()

    def direction_done(self):
        with self.lock:
            self.done += 1
            finished = self.done == 2 and not self.closed
            if finished:
                self.closed = True
        if finished:
            for s in (self.client, self.upstream):
                try:
                    s.close()
                except OSError:
                    pass

    def abort(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            if s is not None:
                reset(s)


def accept_loop(listener, port, target, rtt):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        log(f"accept {port} {time.monotonic():.6f}")
        Connection(client, target, rtt).start()


def main():
    ap = argparse.ArgumentParser(description="TCP relay on 127.0.0.1 adding a round-trip time (see the module doc)")
    ap.add_argument("--map", action="append", required=True, metavar="LISTEN_PORT:HOST:PORT")
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("--stats", help="write the write-lateness summary (JSON) here when stopped")
    ap.add_argument("--max-seconds", type=float, default=4 * 3600, help="exit by itself after this long")
    args = ap.parse_args()
    rtt = args.rtt_ms / 1000.0
    # A writer whose sleep has ended must get the interpreter lock at once, not after another
    # thread's 5 ms time slice: the default switch interval would show up as delay jitter.
    sys.setswitchinterval(0.0002)

    listeners = []
    for m in args.map:
        lport, host, tport = m.split(":")
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", int(lport)))
        ls.listen(512)
        listeners.append(ls)
        threading.Thread(target=accept_loop, args=(ls, int(lport), (host, int(tport)), rtt), daemon=True).start()

    stop = threading.Event()

    def on_signal(*_):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"ready rtt_ms={args.rtt_ms} maps={','.join(args.map)}")
    stop.wait(args.max_seconds)
    for ls in listeners:
        ls.close()
    if args.stats:
        with LATENESS_LOCK:
            xs = sorted(LATENESS)
        summary = {"writes": len(xs)}
        if xs:
            def q(p):
                return xs[min(len(xs) - 1, int(p * len(xs)))][0] * 1000

            summary.update(median_ms=q(0.5), p90_ms=q(0.9), p99_ms=q(0.99), max_ms=xs[-1][0] * 1000,
                           worst=[(round(late * 1000, 2), name, kind) for late, name, kind in xs[-5:]])
        with open(args.stats, "w") as f:
            json.dump(summary, f)


if __name__ == "__main__":
    main()
