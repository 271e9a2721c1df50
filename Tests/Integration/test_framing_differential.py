"""Differential framing through the http-proxy listener: h11 (the reference parser, python3-h11) on both sides of the
bridge must see exactly the same messages.

- Valid streams (CASES seeded cases, reproducible from BASE_SEED): pipelined absolute-form HTTP/1.1 requests with
  random Content-Length / chunked bodies (chunk sizes, extensions, upper-case and zero-padded sizes, trailers),
  keep-alive, written in random splits. The gateway parses what arrives with h11; the sequence (method, origin-form
  target, body bytes, trailers, X-* headers) must equal h11's reading of what the client sent. The gateway answers
  each with random pipelined responses (1xx before the final one, Content-Length, chunked with extensions and
  trailers, 204, 304 announcing a length, HEAD answers announcing a length), written in random pieces; h11 on the
  client side must see the same (statuses, body, trailers) the gateway meant.
- Invalid streams (INVALID_CASES): one request of a random pipeline is made malformed or ambiguous (MUTATIONS). Where
  h11 refuses it, the bridge must refuse it too (an error answer of its own, 4xx/5xx, after forwarding and answering
  the requests before it); where h11 accepts it, the bridge forwards it exactly, or refuses it if it is in the
  documented STRICTER set. Never does the gateway see a message h11 would frame differently, or bytes h11 refuses.

A failing run stops after MAX_FAILURES failing cases and prints each with its seed (rerun one case with
DIFF_SEED=<seed>; DIFF_CASES=<n> changes the count, DIFF_MAX_FAILURES=<n> how many failures are collected).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time

import pytest

h11 = pytest.importorskip("h11", reason="python3-h11 (the reference parser) is not installed: scripts/setup --test")

from support.differential import (MUTATIONS, RESPONSE_MUTATIONS, RESPONSE_STRICTER, RESPONSE_VALID,  # noqa: E402
                                  STRICTER, H11Gateway, IncrementalParser, Message, expected_response,
                                  generate_case, generate_invalid_case, generate_invalid_response_case, generate_response,
                                  parse_requests, random_splits)
from support.proxy import open_proxy  # noqa: E402
from support.servers import server_context  # noqa: E402

BASE_SEED = 20261203
CASES = int(os.environ.get("DIFF_CASES", "200"))
INVALID_CASES = int(os.environ.get("DIFF_INVALID_CASES", "120"))
INVALID_RESPONSE_CASES = int(os.environ.get("DIFF_INVALID_RESPONSE_CASES", "80"))
ONLY_SEED = os.environ.get("DIFF_SEED")
MAX_FAILURES = int(os.environ.get("DIFF_MAX_FAILURES", "5"))
CASE_TIMEOUT = 3.0
LIMITS = {"idle_timeout": "2s", "max_sessions": 64}


@pytest.fixture
def h11_gateway(pki):
    gw = H11Gateway(server_context(pki), name="gw").start()
    yield gw
    gw.stop()


def seeds(count: int, salt: int) -> list[int]:
    if ONLY_SEED:
        return [int(ONLY_SEED)]
    rng = random.Random(BASE_SEED + salt)
    return [rng.getrandbits(48) for _ in range(count)]


def exchange(b, stream: bytes, methods: list[bytes], rng: random.Random, expected_count: int):
    """Send `stream` in random splits while h11 reads the responses; until `expected_count` responses, EOF or
    CASE_TIMEOUT. Returns (responses, client-side h11 error, how it ended)."""
    parser = IncrementalParser(h11.CLIENT, methods)
    pieces = random_splits(rng, stream, 16)
    pauses = [rng.choice([0, 0, 0, 0.001]) for _ in pieces]
    with open_proxy(b, timeout=CASE_TIMEOUT) as sock:
        def send():
            try:
                for piece, pause in zip(pieces, pauses):
                    sock.sendall(piece)
                    if pause:
                        time.sleep(pause)
            except OSError:
                pass  # the bridge refused and closed: what it answered is read below
        sender = threading.Thread(target=send, name="diff-sender", daemon=True)
        sender.start()
        deadline = time.monotonic() + CASE_TIMEOUT
        how = "timeout"
        sock.settimeout(0.1)
        while time.monotonic() < deadline and len(parser.messages) < expected_count and not parser.error:
            try:
                data = sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except ConnectionResetError:
                how = "reset (the bridge closed with unread input: no lingering close, answers may be lost)"
                break
            if not data:
                how = "eof"
                break
            parser.feed(data)
        if len(parser.messages) >= expected_count:
            how = "complete"
            if parser.messages[-1].start[-1] >= 400 and (b"x-gateway", b"gw") not in parser.messages[-1].x_headers:
                # The last answer is the bridge's own error: it closes the connection next. Say whether it did.
                how = "complete, then no close"
                sock.settimeout(CASE_TIMEOUT)
                try:
                    while True:
                        extra = sock.recv(65536)
                        if not extra:
                            how = "complete, then eof"
                            break
                        parser.feed(extra)
                except (socket.timeout, TimeoutError):
                    pass
                except ConnectionResetError:
                    how = "complete, then reset (no lingering close: answers may be lost)"
        sender.join(CASE_TIMEOUT)
    return parser.messages, parser.error, how


def gateway_view(gw: H11Gateway, case: int, wait: float) -> tuple[list[Message], list[str]]:
    deadline = time.monotonic() + wait
    for conn in gw.seen(case):
        conn.finished.wait(max(0.0, deadline - time.monotonic()))
    conns = gw.seen(case)
    messages = [m for c in conns for m in c.messages]
    errors = [f"connection {c.index}: {c.error or c.handshake_error}" for c in conns if c.error or c.handshake_error]
    return messages, errors


def first_difference(want: list[Message], got: list[Message]) -> str:
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            fields = [f for f in ("start", "body", "trailers", "x_headers") if getattr(w, f) != getattr(g, f)]
            detail = "; ".join(f"{f}: want {str(getattr(w, f))[:120]} got {str(getattr(g, f))[:120]}" for f in fields)
            return f"message {i} differs ({detail})"
    return f"{len(want)} messages expected, {len(got)} seen"


def check_generator(case, ref: list[Message]) -> None:
    """The reference reading of a generated stream is what the generator meant (else the harness is wrong)."""
    assert len(ref) == len(case.requests), f"seed {case.seed}: h11 framed {len(ref)} of {len(case.requests)}"
    for spec, msg in zip(case.requests, ref):
        assert msg.start == (spec.method.encode(), spec.path.encode()), (spec, msg.start)
        assert msg.body == (b"" if spec.framing == "none" else spec.body), spec
        assert msg.trailers == tuple((k.lower().encode(), v.encode()) for k, v in spec.trailers), spec


def test_reference_verdicts_on_the_mutations_are_the_documented_ones():
    """h11 accepts exactly the STRICTER mutations and refuses the rest (guards the classification below against an
    h11 that changed its mind)."""
    wrong = []
    for name in sorted(MUTATIONS):
        for seed in range(5):
            rng = random.Random(seed)
            case = generate_case(seed, 0, max_requests=1)
            stream = MUTATIONS[name](case.requests[0], rng)
            _, error = parse_requests(stream)
            if (error is None) != (name in STRICTER):
                wrong.append(f"{name} (seed {seed}): h11 {'accepts' if error is None else 'refuses: ' + error}")
    for name in sorted(RESPONSE_MUTATIONS):
        for seed in range(5):
            rng = random.Random(seed)
            data = RESPONSE_MUTATIONS[name](generate_response(rng, "GET"), rng)
            _, error = reference_responses([b"GET"], [data])
            if (error is None) != (name in RESPONSE_VALID | RESPONSE_STRICTER):
                wrong.append(f"{name} (seed {seed}): h11 {'accepts' if error is None else 'refuses: ' + error}")
    assert not wrong, "\n".join(wrong)


def reference_responses(methods: list[bytes], raw: list[bytes]) -> tuple[list[Message], str | None]:
    """h11's reading of the gateway's whole response stream (not closed: the fresh connection h11 needs after the
    last response would take a close as an error)."""
    parser = IncrementalParser(h11.CLIENT, methods)
    parser.feed(b"".join(raw))
    if parser.error is None and len(parser.messages) < len(methods):
        return parser.messages, f"h11: only {len(parser.messages)} of {len(methods)} responses complete"
    return parser.messages, parser.error


def test_valid_pipelines_reach_the_gateway_and_come_back_with_identical_framing(proxy_bridge, h11_gateway):
    b = proxy_bridge(h11_gateway, limits=LIMITS)
    failures, started = [], time.monotonic()
    ran = 0
    for number, seed in enumerate(seeds(CASES, 0)):
        ran += 1
        case = generate_case(seed, number)
        ref, error = parse_requests(case.stream)
        assert error is None, f"seed {seed}: the generator made a stream h11 refuses: {error}"
        check_generator(case, ref)
        h11_gateway.begin(number, case.responses)
        responses, client_error, how = exchange(b, case.stream, [r.method.encode() for r in case.requests],
                                                random.Random(seed ^ 0x5A5A), len(case.requests))
        gateway_messages, gateway_errors = gateway_view(h11_gateway, number, 0.5 if how == "complete" else 2.0)
        wanted_responses = [expected_response(r, "gw") for r in case.responses]
        problems = []
        if gateway_errors:
            problems.append(f"h11 at the gateway refused what the bridge forwarded: {gateway_errors}")
        if gateway_messages != ref:
            problems.append(f"requests: {first_difference(ref, gateway_messages)}")
        if client_error:
            problems.append(f"h11 at the client refused what the bridge sent back: {client_error}")
        if responses != wanted_responses:
            problems.append(f"responses ({how}): {first_difference(wanted_responses, responses)}")
        if problems:
            failures.append(f"seed {seed} (case {number}, {len(case.requests)} requests: "
                            f"{[(r.method, r.framing) for r in case.requests]}, responses "
                            f"{[r.kind for r in case.responses]}):\n  " + "\n  ".join(problems))
            if len(failures) >= MAX_FAILURES:
                break
    print(f"\n{ran} valid cases in {time.monotonic() - started:.1f} s, {len(failures)} failing")
    assert not failures, f"{len(failures)} failing case(s) (stopped after {MAX_FAILURES}):\n" + "\n".join(failures)


def test_invalid_requests_are_refused_where_the_reference_refuses_them_and_never_forwarded_differently(
        proxy_bridge, h11_gateway):
    b = proxy_bridge(h11_gateway, limits=LIMITS)
    failures, started, ran = [], time.monotonic(), 0
    outcomes: dict[str, set] = {}
    for number, seed in enumerate(seeds(INVALID_CASES, 1)):
        ran += 1
        case = generate_invalid_case(seed, 10_000 + number)
        k = case.mutated_index
        ref, ref_error = parse_requests(case.stream)
        h11_gateway.begin(10_000 + number, case.responses)
        methods = [r.method.encode() for r in case.requests]
        responses, client_error, how = exchange(b, case.stream, methods, random.Random(seed ^ 0xA5A5),
                                                len(case.requests))
        gateway_messages, gateway_errors = gateway_view(h11_gateway, 10_000 + number, 2.0)
        from_gateway = [m for m in responses if (b"x-gateway", b"gw") in m.x_headers]
        refusals = [m for m in responses if (b"x-gateway", b"gw") not in m.x_headers and m.start[-1] >= 400]
        refused = bool(refusals)
        outcomes.setdefault(case.mutation, set()).add("refused" if refused else "forwarded")
        problems = []
        if gateway_errors:
            problems.append(f"h11 at the gateway refused what the bridge forwarded: {gateway_errors}")
        if gateway_messages != ref[:len(gateway_messages)] or len(gateway_messages) > len(ref):
            problems.append(f"the gateway saw messages h11 frames differently: {first_difference(ref, gateway_messages)}")
        if refused:
            if ref_error is None and case.mutation not in STRICTER:
                problems.append(f"the bridge refused ({refusals[0].start}) what h11 accepts, outside the documented "
                                f"stricter set")
            if gateway_messages != ref[:k]:
                problems.append(f"the {k} valid request(s) before the refused one were not all forwarded: "
                                f"{first_difference(ref[:k], gateway_messages)}")
            if len(from_gateway) != k or responses[k:k + 1] != refusals[:1]:
                problems.append(f"expected {k} gateway response(s) then the bridge's refusal, got "
                                f"{[m.start for m in responses]}")
        else:
            if ref_error is not None:
                problems.append(f"h11 refuses request {k} ({ref_error[:160]}) but the bridge did not answer it with an "
                                f"error (client read ended: {how}; responses {[m.start for m in responses]})")
            elif gateway_messages != ref or len(from_gateway) != len(case.requests):
                problems.append(f"neither forwarded intact nor refused (client read ended: {how}): "
                                f"{first_difference(ref, gateway_messages)}; responses {[m.start for m in responses]}")
        if problems:
            failures.append(f"seed {seed} (mutation {case.mutation} on request {k} of {len(case.requests)}):\n  "
                            + "\n  ".join(problems))
            if len(failures) >= MAX_FAILURES:
                break
    print(f"\n{ran} invalid cases in {time.monotonic() - started:.1f} s, {len(failures)} failing; outcomes: "
          + ", ".join(f"{k}: {'/'.join(sorted(v))}" for k, v in sorted(outcomes.items())))
    assert not failures, f"{len(failures)} failing case(s) (stopped after {MAX_FAILURES}):\n" + "\n".join(failures)


def test_invalid_responses_are_never_delivered_framed_differently(proxy_bridge, h11_gateway):
    """The gateway's answer to one request of a pipeline is mutated (RESPONSE_MUTATIONS). Valid ones (long trailers,
    quoted chunk extensions, a repeated equal Content-Length) must reach the client exactly as h11 frames them; the
    others must never be delivered as a message (the responses before it are), and the client's connection must be
    closed, not left hanging."""
    b = proxy_bridge(h11_gateway, limits=LIMITS)
    failures, started, ran = [], time.monotonic(), 0
    for number, seed in enumerate(seeds(INVALID_RESPONSE_CASES, 2)):
        ran += 1
        case, raw = generate_invalid_response_case(seed, 20_000 + number)
        k = case.mutated_index
        methods = [r.method.encode() for r in case.requests]
        ref, ref_error = reference_responses(methods, raw)
        h11_gateway.begin(20_000 + number, raw)
        responses, client_error, how = exchange(b, case.stream, methods, random.Random(seed ^ 0x3C3C),
                                                len(case.requests))
        _, gateway_errors = gateway_view(h11_gateway, 20_000 + number, 1.0)
        from_gateway = [m for m in responses if (b"x-gateway", b"gw") in m.x_headers]
        from_bridge = [m for m in responses if (b"x-gateway", b"gw") not in m.x_headers]
        problems = []
        if gateway_errors:
            problems.append(f"h11 at the gateway refused the (valid) requests the bridge forwarded: {gateway_errors}")
        if len(from_gateway) > len(ref) or from_gateway != ref[:len(from_gateway)]:
            problems.append(f"the client received a response h11 frames differently: "
                            f"{first_difference(ref, from_gateway)}")
        if ref_error is None and case.mutation not in RESPONSE_STRICTER:
            if responses != ref:
                problems.append(f"a valid response was not delivered intact (client read ended: {how}; client h11: "
                                f"{client_error}): {first_difference(ref, responses)}")
        else:
            if len(from_gateway) > k:
                problems.append(f"the mutated response {k} was delivered: {[m.start for m in responses]}")
            if how in ("timeout", "complete", "complete, then no close"):
                problems.append(f"the client's connection was not closed after the gateway's malformed response "
                                f"(read ended: {how})")
            if any(m.start[-1] < 500 for m in from_bridge):
                problems.append(f"the bridge answered a gateway failure with {[m.start for m in from_bridge]}")
        if problems:
            failures.append(f"seed {seed} (mutation {case.mutation} on response {k} of {len(case.requests)}; h11: "
                            f"{(ref_error or 'accepts')[:120]}):\n  " + "\n  ".join(problems))
            if len(failures) >= MAX_FAILURES:
                break
    print(f"\n{ran} invalid-response cases in {time.monotonic() - started:.1f} s, {len(failures)} failing")
    assert not failures, f"{len(failures)} failing case(s) (stopped after {MAX_FAILURES}):\n" + "\n".join(failures)
