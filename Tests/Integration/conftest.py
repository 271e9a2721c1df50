"""Shared fixtures: the binary under test, the PKI, and factories for upstream servers, DNS stubs and bridges.

Everything a fixture starts, it stops by its own handle at teardown. A bridge that dies on its own during a
test (crash, unexpected exit) fails that test at teardown, and so does a connection from a bridge to a test
server its config does not route (the unrouted-dial tripwire, support/tripwire.py).
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import certs, inbound, legacy  # noqa: E402
from support.bridge import Bridge, base_config, run_cli  # noqa: E402
from support.dns import DnsStub  # noqa: E402
from support.servers import ThreadedUpstream, Upstream, server_context  # noqa: E402
from support.tripwire import TRIPWIRE  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: long-running variants; deselected by default, run with -m soak")
    # 500 concurrent sessions cost this process ~1000 descriptors and the bridge ~1000 (it inherits this limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_sep("-", "unrouted-dial tripwire")
    terminalreporter.write_line(TRIPWIRE.summary())


@pytest.fixture(autouse=True)
def unrouted_dial_tripwire(request):
    """Fails the test during which a registered bridge connected to a test server its config does not route.

    Autouse and requested first, so it is torn down last: connections made while the test's own servers and
    bridges shut down are counted too.
    """
    TRIPWIRE.current_test = request.node.nodeid
    yield
    message = TRIPWIRE.failure_message(failing=True)
    TRIPWIRE.current_test = None
    if message:
        pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def bridge_bin() -> Path:
    path = Path(os.environ.get("TLS_BRIDGE_BIN", REPO / ".build" / "debug" / "tls-bridge"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"tls-bridge binary not found or not executable at {path}: build it (swift build) "
                    f"or point TLS_BRIDGE_BIN at it", pytrace=False)
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> certs.Pki:
    return certs.generate(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def legacy_pki(tmp_path_factory) -> legacy.LegacyPki:
    """Merchant-side PKI for tls listeners: listener identities, a minting CA, another client CA."""
    return legacy.generate(tmp_path_factory.mktemp("legacy-pki"))


@pytest.fixture(scope="session")
def inbound_pki(tmp_path_factory) -> inbound.InboundPki:
    """Inbound PKI: the merchant's public identity (notify listener), the legacy backend's certificates."""
    return inbound.generate(tmp_path_factory.mktemp("inbound-pki"))


@pytest.fixture
def backend_server(inbound_pki):
    """Factory: backend_server(tls=None|"pin"|"ca", port=0, context=None) starts the merchant's web server.

    tls=None: plain HTTP; "pin"/"ca": TLS 1.0-only HTTPS with the self-signed / Backend CA certificate.
    close_notify=False: after its answer a TLS backend just closes TCP (as old servers do).
    """
    started: list[inbound.HttpBackend] = []

    def make(tls: str | None = None, *, port: int = 0, context=None, name: str = "backend",
             close_notify: bool = True) -> inbound.HttpBackend:
        ctx = context or (inbound.legacy_server_context(inbound_pki, variant=tls) if tls else None)
        server = inbound.HttpBackend(ctx, port=port, name=name, close_notify=close_notify).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def upstream(pki):
    """Factory: upstream(ctx=None, **server_context kwargs) starts a gateway-like TLS server.

    `upstream(tls=False)` starts a TCP server that never answers the handshake; `threaded=True` a blocking
    ECHO-only server whose failed handshakes send their TLS alert (see `ThreadedUpstream`); `http=True` a
    blocking HTTPS server for curl (see `legacy.HttpsUpstream`).
    """
    started: list[Upstream] = []

    def make(context=None, *, tls: bool = True, threaded: bool = False, name: str = "upstream",
             http: bool = False, **ctx_kwargs):
        ctx = None if not tls else (context or server_context(pki, **ctx_kwargs))
        if http:  # blocking HTTPS server answering POST /echo (for curl)
            server = legacy.HttpsUpstream(ctx, name=name).start()
        elif threaded:
            server = ThreadedUpstream(ctx, name=name).start()
        else:
            server = Upstream(ctx, name=name).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def dns_stub():
    started: list[DnsStub] = []

    def make(records=None, *, silent: bool = False, delay: float = 0.0) -> DnsStub:
        stub = DnsStub(records, silent=silent, delay=delay).start()
        started.append(stub)
        return stub

    yield make
    for stub in started:
        stub.stop()


@pytest.fixture
def bridge(bridge_bin, pki, tmp_path):
    """Factory: bridge(upstream_address, **base_config kwargs) starts `tls-bridge run` and waits until it listens.

    Pass `config=` to run a hand-made config dict instead. `start=False` returns it unstarted.
    """
    started: list[Bridge] = []

    def make(upstream_address: str | None = None, *, config: dict | None = None, start: bool = True,
             **kwargs) -> Bridge:
        workdir = tmp_path / f"bridge{len(started)}"
        workdir.mkdir()
        cfg = config or base_config(pki, workdir, upstream_address, **kwargs)
        b = Bridge(bridge_bin, workdir, cfg)
        started.append(b)
        return b.start() if start else b

    yield make
    crashed = []
    for b in started:
        code = b.crashed()
        if code is not None:
            crashed.append((code, b.stderr()[-3000:]))
        b.stop()
    if crashed:
        pytest.fail(f"tls-bridge exited on its own during the test: {crashed}", pytrace=False)


@pytest.fixture
def notify_bridge(bridge, inbound_pki, tmp_path):
    """Factory: notify_bridge(backend_entry, **notify listener keys) runs an inbound bridge: one [[backend]],
    the "notify" tls listener in front of it (first listener, so `Bridge.listen` is its address).

    `backends=` / `listeners=` / `upstreams=` replace the generated tables; `limits=` overrides limits.
    """
    count = [0]

    def make(backend: dict | None = None, *, backends: list | None = None, listeners: list | None = None,
             upstreams: list | None = None, limits: dict | None = None, level: str = "info", start: bool = True,
             **listener_keys):
        count[0] += 1
        logdir = tmp_path / f"inbound{count[0]}"
        logdir.mkdir()
        cfg = inbound.inbound_config(logdir, backends or [backend],
                                     listeners or [inbound.notify_listener(inbound_pki, **listener_keys)],
                                     upstreams=upstreams, limits=limits, level=level)
        return bridge(config=cfg, start=start)

    return make


@pytest.fixture
def cli(bridge_bin):
    def run(*args, timeout: float = 20.0):
        return run_cli(bridge_bin, *args, timeout=timeout)
    return run


@pytest.fixture
def http_gateway(pki):
    """Factory: http_gateway(name, **server_context kwargs) starts a keep-alive HTTPS/1.1 gateway that records
    every request (see `support.proxy.HttpGateway`). Default: TLS 1.2 only, the merchant's client certificate
    required."""
    import ssl

    from support.proxy import HttpGateway
    started: list = []

    def make(name: str = "gw", context=None, **ctx_kwargs):
        ctx_kwargs.setdefault("client_auth", "required")
        ctx_kwargs.setdefault("max_version", ssl.TLSVersion.TLSv1_2)
        server = HttpGateway(context or server_context(pki, **ctx_kwargs), name=name).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def proxy_bridge(bridge, pki, legacy_pki):
    """Factory: proxy_bridge(gw, gw2=None, limits=None, level="info", **proxy listener keys) runs a bridge whose
    only listener is the http-proxy "proxy" (Mint CA identity, TLS 1.0 allowed, routes sandbox → gw and
    module:8443 → gw2). `gw`/`gw2` are servers (or "IP:port" strings)."""
    from support.proxy import proxy_config_kwargs

    def make(gw, gw2=None, *, limits: dict | None = None, level: str = "info", start: bool = True,
             **listener_keys):
        gw_address = gw if isinstance(gw, str) else gw.address
        gw2_address = None if gw2 is None else (gw2 if isinstance(gw2, str) else gw2.address)
        return bridge(gw_address, limits=limits, level=level, start=start,
                      **proxy_config_kwargs(pki, legacy_pki, gw_address, gw2_address, **listener_keys))

    return make
