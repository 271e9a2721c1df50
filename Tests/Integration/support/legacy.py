"""Helpers for the `accept = "tls"` listener tests: the merchant-side PKI, legacy TLS clients (Python ssl,
`openssl s_client`, curl, hand-built ClientHellos), an HTTPS upstream for curl, and record checks.

Nothing here starts anything without returning a handle (or bounding it with a timeout): servers are
stopped by the fixture that started them, subprocesses run under `subprocess.run(..., timeout=...)`.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from . import certs
from .bridge import CLOSES, PHASES, RECORD_KEYS, UPSTREAM_KEYS, recv_exact
from .servers import CHUNK, HANDSHAKE_TIMEOUT, IO_TIMEOUT, Connection, ThreadedUpstream, generated_chunks

SANDBOX = "sandbox.paygent.test"
MODULE = "module.paygent.test"
UNROUTED = "unknown.paygent.test"
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"
CLIENT_TIMEOUT = 20.0
# `check`'s note on a listener whose merchant side takes legacy TLS without 3DES/RC4 (one line, on a Debian OpenSSL)
XP_NOTE = re.compile(r"note: Windows XP / Server 2003 clients \(IE 6, IE 8 on XP.*\) offer only 3DES or RC4, .*: "
                     r"they cannot use this listener; point them at a plain listener")

TLS_PHASES = PHASES | {"downstream_handshake"}
TLS_CLOSES = CLOSES | {"refused"}
DOWNSTREAM_KEYS = {"address", "protocol", "cipher", "sni", "client_cert", "offered"}

VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


# --- merchant-side PKI ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LegacyPki:
    directory: Path
    listener_ca: Path           # "Listener CA": issues the static listener identities (what merchants trust)
    listener_cert: Path         # CN=sandbox.paygent.test, SAN sandbox + module + localhost + 127.0.0.1
    listener_key: Path
    listener_combined: Path     # listener_cert + its key in one file
    module_cert: Path           # per-name identity: CN=module.paygent.test, O=Per-Name Identity (Listener CA)
    module_key: Path
    mint_ca: Path               # "Mint CA": a local CA whose key the bridge may use to mint per-name certificates
    mint_ca_key: Path
    other_client_ca: Path       # "Other Client CA": not the merchant client CA
    other_client_cert: Path     # CN=merchant-9999,O=Other Merchant, issued by Other Client CA
    other_client_key: Path


OTHER_CLIENT_CN = "merchant-9999"


def generate(directory: Path) -> LegacyPki:
    directory.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes, mode: int = 0o644) -> Path:
        path = directory / name
        path.write_bytes(data)
        path.chmod(mode)
        return path

    listener_ca, listener_ca_key = certs._ca("Listener CA")
    mint_ca, mint_ca_key = certs._ca("Mint CA")
    other_client_ca, other_client_ca_key = certs._ca("Other Client CA")

    listener_key = certs._key()
    listener = certs._leaf(certs._name(SANDBOX, "Static Listener Identity"), listener_key, listener_ca,
                           listener_ca_key, dns=[SANDBOX, MODULE, "localhost"], ips=["127.0.0.1"])
    module_key = certs._key()
    module = certs._leaf(certs._name(MODULE, "Per-Name Identity"), module_key, listener_ca, listener_ca_key,
                         dns=[MODULE])
    other_key = certs._key()
    other = certs._leaf(certs._name(OTHER_CLIENT_CN, "Other Merchant"), other_key, other_client_ca,
                        other_client_ca_key, client=True)

    return LegacyPki(
        directory=directory,
        listener_ca=write("listener-ca.pem", certs._pem_cert(listener_ca)),
        listener_cert=write("listener.pem", certs._pem_cert(listener)),
        listener_key=write("listener.key", certs._pem_key(listener_key), 0o600),
        listener_combined=write("listener-combined.pem",
                                certs._pem_cert(listener) + certs._pem_key(listener_key), 0o600),
        module_cert=write("module.pem", certs._pem_cert(module)),
        module_key=write("module.key", certs._pem_key(module_key), 0o600),
        mint_ca=write("mint-ca.pem", certs._pem_cert(mint_ca)),
        mint_ca_key=write("mint-ca.key", certs._pem_key(mint_ca_key), 0o600),
        other_client_ca=write("other-client-ca.pem", certs._pem_cert(other_client_ca)),
        other_client_cert=write("other-client.pem", certs._pem_cert(other)),
        other_client_key=write("other-client.key", certs._pem_key(other_key), 0o600),
    )


def fingerprint(pem_path: Path, *, colons: bool = True, lower: bool = False) -> str:
    cert = x509.load_pem_x509_certificate(Path(pem_path).read_bytes())
    digest = cert.fingerprint(hashes.SHA256()).hex()
    digest = digest.lower() if lower else digest.upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)) if colons else digest


# --- listener configs ------------------------------------------------------------------------------------------

def tls_listener(lpki: LegacyPki, *, identity: str = "static", name: str = "legacy", **keys) -> dict:
    """A `[[listener]]` override dict for `base_config(listener=...)`: accept = "tls" with an identity.

    identity: "static" (cert + key), "combined" (cert holding the key), "mint" (ca_cert + ca_key) or "none".
    Other keyword arguments are listener keys (routes=, certificates=, min_version=, ...); None removes one.
    """
    listener: dict = {"name": name, "accept": "tls"}
    if identity == "static":
        listener.update(cert=str(lpki.listener_cert), key=str(lpki.listener_key))
    elif identity == "combined":
        listener.update(cert=str(lpki.listener_combined))
    elif identity == "mint":
        listener.update(ca_cert=str(lpki.mint_ca), ca_key=str(lpki.mint_ca_key))
    elif identity != "none":
        raise ValueError(identity)
    listener.update(keys)
    return listener


def routes(**extra) -> dict:
    """The two standard routes: sandbox → gw, module → gw2 (plus extra name=upstream pairs)."""
    table = {SANDBOX: "gw", MODULE: "gw2"}
    table.update(extra)
    return table


def merchant_upstream(pki) -> dict:
    """`upstream=` overrides: the bridge presents the merchant's client certificate to gw."""
    return {"client_cert": str(pki.client_cert), "client_key": str(pki.client_key)}


# --- clients ---------------------------------------------------------------------------------------------------

def client_context(version: str | None = "TLSv1", *, max_version: str | None = None, cafile: Path | None = None,
                   ciphers: str | None = LEGACY_CIPHERS, cert: Path | None = None, key: Path | None = None,
                   check_hostname: bool = True) -> ssl.SSLContext:
    """A merchant-like client: pinned to `version` (min = max) unless max_version is given; verifies against
    `cafile` (else verifies nothing)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if version:
        ctx.minimum_version = VERSIONS[version]
        ctx.maximum_version = VERSIONS[max_version or version]
    if ciphers:
        ctx.set_ciphers(ciphers)
    if cafile:
        ctx.load_verify_locations(str(cafile))
        ctx.check_hostname = check_hostname
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def tls_connect(b, ctx: ssl.SSLContext, sni: str | None = SANDBOX, timeout: float = CLIENT_TIMEOUT) -> ssl.SSLSocket:
    raw = socket.create_connection(b.listen, timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def echo_over(sock, payload: bytes = b"ping") -> bytes:
    sock.sendall(b"ECHO %d\n" % len(payload) + payload)
    return recv_exact(sock, len(payload))


def duplex_over(sock, size: int, seed: int) -> tuple[str, str, int]:
    """DUPLEX through an SSLSocket (send everything, then read to EOF; the server reads and writes at once).

    Returns (sha256 of what was sent, sha256 of what came back, bytes that came back)."""
    payload = b"".join(generated_chunks(seed + 1, size))
    sock.sendall(f"DUPLEX {size} {size} {seed}\n".encode() + payload)
    received = hashlib.sha256()
    got = 0
    while True:
        try:
            data = sock.recv(1 << 20)
        except ssl.SSLError as exc:  # a peer that closes TCP without close_notify
            if "EOF" in str(exc) or "eof" in str(exc):
                break
            raise
        if not data:
            break
        received.update(data)
        got += len(data)
    return hashlib.sha256(payload).hexdigest(), received.hexdigest(), got


def refused_handshake(b, ctx: ssl.SSLContext, sni: str | None = SANDBOX, payload: bytes = b"ECHO 4\nping"):
    """Try a session the bridge must refuse: returns the exception (or the bytes read) the client saw.

    With TLS 1.3 a refused client certificate only shows after the client's handshake returned, so the
    client also sends and reads; nothing may come back either way."""
    try:
        with tls_connect(b, ctx, sni) as s:
            s.sendall(payload)
            data = s.recv(64)
            if data:
                raise AssertionError(f"a refused session delivered {data!r}")
            return data
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        return exc


def run_tool(args: list[str], *, stdin: bytes = b"", timeout: float = CLIENT_TIMEOUT,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{args[0]} did not finish within {timeout} s; stdout tail={exc.stdout[-500:]!r} "
                             f"stderr tail={exc.stderr[-2000:] if exc.stderr else b''!r}") from None


def s_client(port: int, *args: str, stdin: bytes = b"", quiet: bool = True,
             timeout: float = CLIENT_TIMEOUT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`openssl s_client` on 127.0.0.1:port, fed `stdin`. quiet: only application data on stdout, stdin EOF
    does not end the session (the server's close does). env: the process environment (e.g. OPENSSL_CONF)."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-nocommands"]
    if quiet:
        cmd.append("-quiet")
    return run_tool(cmd + list(args), stdin=stdin, timeout=timeout, env=env)


# --- hand-built ClientHellos -----------------------------------------------------------------------------------

def client_hello(suites: list[int], *, version: int = 0x0301, record_version: int = 0x0301,
                 sni: str | None = None) -> bytes:
    """A minimal ClientHello record: `version`, the given cipher suites, null compression, optional SNI."""
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00"
    body += struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", s) for s in suites)
    body += b"\x01\x00"
    if sni is not None:
        host = sni.encode()
        entry = b"\x00" + struct.pack("!H", len(host)) + host
        ext = struct.pack("!H", len(entry)) + entry
        body += struct.pack("!H", 4 + len(ext)) + struct.pack("!HH", 0, len(ext)) + ext
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16" + struct.pack("!HH", record_version, len(handshake)) + handshake


def send_raw(address: tuple[str, int], data: bytes, timeout: float = 10.0, *,
             records: int | None = None) -> bytes:
    """Send `data`, read until the peer closes (or `timeout`, or once `records` complete TLS records came);
    returns what came back."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        out = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                if records is not None and len(tls_records(bytes(out))) >= records:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return bytes(out)


def tls_records(data: bytes) -> list[tuple[int, bytes]]:
    """Split TLS records: [(content type, fragment)], complete records only."""
    out, offset = [], 0
    while offset + 5 <= len(data):
        ctype, _, length = struct.unpack("!BHH", data[offset:offset + 5])
        if offset + 5 + length > len(data):
            break
        out.append((ctype, data[offset + 5:offset + 5 + length]))
        offset += 5 + length
    return out


def alerts(data: bytes) -> list[int]:
    """Alert descriptions among the records in `data` (40 handshake_failure, 70 protocol_version, 112
    unrecognized_name, ...)."""
    return [frag[1] for ctype, frag in tls_records(data) if ctype == 21 and len(frag) >= 2]


# --- an HTTPS upstream for curl ----------------------------------------------------------------------------------

class HttpsUpstream(ThreadedUpstream):
    """A blocking HTTPS/1.1 server: `POST /echo` answers with the request body; anything else is 404.

    Each connection's `Connection` gets command ("POST /echo"), received_digest and sent_digest."""

    def _serve(self, sock: socket.socket, conn: Connection) -> None:
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            try:
                tls = self.context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                conn.handshake_error = f"{type(exc).__name__}: {exc}"
                return
            with tls:
                tls.settimeout(IO_TIMEOUT)
                conn.tls_version = tls.version()
                conn.cipher = tls.cipher()[0]
                conn.sni = getattr(tls, "seen_sni", None)
                peercert = tls.getpeercert()
                conn.client_cert_subject = peercert.get("subject") if peercert else None
                head = bytearray()
                while b"\r\n\r\n" not in head:
                    data = tls.recv(4096)
                    if not data or len(head) > 65536:
                        conn.error = f"incomplete request head {bytes(head[:200])!r}"
                        return
                    head += data
                head, body = bytes(head).split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                conn.command = " ".join(lines[0].split()[:2])
                headers = {k.strip().lower(): v.strip() for k, v in
                           (l.split(":", 1) for l in lines[1:] if ":" in l)}
                length = int(headers.get("content-length", "0"))
                body = bytearray(body)
                while len(body) < length:
                    data = tls.recv(CHUNK)
                    if not data:
                        conn.error = f"EOF after {len(body)} of {length} body bytes"
                        return
                    body += data
                conn.bytes_in = len(head) + 4 + len(body)
                conn.received_digest = hashlib.sha256(body).hexdigest()
                if conn.command == "POST /echo":
                    status, reply = "200 OK", bytes(body)
                else:
                    status, reply = "404 Not Found", b"not found\n"
                conn.sent_digest = hashlib.sha256(reply).hexdigest()
                tls.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n"
                            f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode() + reply)
                conn.bytes_out = len(reply)
                tls.settimeout(1.0)
                try:
                    tls.unwrap()
                except (ssl.SSLError, OSError):
                    pass
        except (ssl.SSLError, OSError, ValueError) as exc:
            conn.error = f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()
            conn.finished.set()


# --- records -----------------------------------------------------------------------------------------------------

def check_tls_record(record: dict) -> None:
    """Shape of a record from a tls listener: every old key, the new downstream keys and `hint`."""
    assert set(record) >= RECORD_KEYS | {"hint"}, f"missing keys {(RECORD_KEYS | {'hint'}) - set(record)} in {record}"
    assert set(record["upstream"]) >= UPSTREAM_KEYS, f"missing upstream keys in {record}"
    assert set(record["downstream"]) >= DOWNSTREAM_KEYS, \
        f"missing downstream keys {DOWNSTREAM_KEYS - set(record['downstream'])} in {record}"
    assert record["direction"] == "outbound", record
    assert record["phase"] in TLS_PHASES, record
    assert record["close"] in TLS_CLOSES, record
    assert record["hint"] is None or (isinstance(record["hint"], str) and record["hint"]), record
    offered = record["downstream"]["offered"]
    if offered is not None:
        assert set(offered) >= {"max_version", "sni", "ciphers"}, record
        assert isinstance(offered["ciphers"], list) and len(offered["ciphers"]) <= 12, record


def contains(text: str | None, *needles: str) -> bool:
    """True when `text` contains every needle (case-insensitive)."""
    return text is not None and all(n.lower() in text.lower() for n in needles)


def record_text(record: dict) -> str:
    return f"{record.get('error') or ''} | {record.get('hint') or ''}"


def assert_no_upstream_connection(*servers, grace: float = 0.3) -> None:
    time.sleep(grace)
    for server in servers:
        assert server.connections == [], \
            f"{server.name} was dialled {len(server.connections)} time(s): {server.connections}"


def offered_names(record: dict) -> list[str]:
    return list((record["downstream"].get("offered") or {}).get("ciphers") or [])


def peer_certificate(sock: ssl.SSLSocket) -> x509.Certificate:
    return x509.load_der_x509_certificate(sock.getpeercert(binary_form=True))


def cert_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(common names, DNS subject alternative names)."""
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    return cns, dns


def pem_subject_cn(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value



# --- a Java (JSSE) client ------------------------------------------------------------------------------------------

JAVA_CLIENT = r"""
import javax.net.ssl.*;
import java.io.*;
import java.net.*;
import java.security.KeyStore;
import java.security.cert.X509Certificate;

// java Client.java <port> <server name> <trust store .p12> <password> <protocol> [cipher suite]
// Connects to 127.0.0.1:<port>, sends SNI <server name> and verifies the certificate against the trust
// store and that name (HTTPS endpoint identification), then ECHO 4 / ping. Prints key=value lines.
public class Client {
    public static void main(String[] a) throws Exception {
        int port = Integer.parseInt(a[0]);
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(a[2])) { ks.load(in, a[3].toCharArray()); }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        Socket raw = new Socket();
        raw.connect(new InetSocketAddress("127.0.0.1", port), 10000);
        raw.setSoTimeout(15000);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(raw, a[1], port, true);
        SSLParameters p = s.getSSLParameters();
        p.setProtocols(new String[] { a[4] });
        if (a.length > 5) p.setCipherSuites(new String[] { a[5] });
        p.setEndpointIdentificationAlgorithm("HTTPS");
        s.setSSLParameters(p);
        try {
            s.startHandshake();
        } catch (IOException e) {
            System.out.println("handshake_error=" + e);
            System.exit(3);
        }
        SSLSession ss = s.getSession();
        X509Certificate c = (X509Certificate) ss.getPeerCertificates()[0];
        System.out.println("protocol=" + ss.getProtocol());
        System.out.println("cipher=" + ss.getCipherSuite());
        System.out.println("subject=" + c.getSubjectX500Principal().getName());
        System.out.println("issuer=" + c.getIssuerX500Principal().getName());
        OutputStream out = s.getOutputStream();
        out.write("ECHO 4\nping".getBytes("US-ASCII"));
        out.flush();
        byte[] buf = new byte[4];
        int n = 0;
        InputStream in = s.getInputStream();
        while (n < 4) { int r = in.read(buf, n, 4 - n); if (r < 0) break; n += r; }
        System.out.println("echo=" + new String(buf, 0, n, "US-ASCII"));
        s.close();
    }
}
"""

# JDK 17's default minus TLSv1, TLSv1.1 and 3DES_EDE_CBC: what an old merchant JVM would still allow.
JAVA_SECURITY = ("jdk.tls.disabledAlgorithms=SSLv3, RC4, DES, MD5withRSA, DH keySize < 1024, "
                 "EC keySize < 224, anon, NULL\n")


def java_available() -> bool:
    import shutil
    return shutil.which("java") is not None and shutil.which("keytool") is not None


def java_client(workdir: Path, port: int, server_name: str, trusted_ca: Path, protocol: str = "TLSv1",
                cipher_suite: str | None = None, timeout: float = 60.0) -> dict:
    """Run the JSSE client (single-file launch) and return its key=value output (plus "exit")."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "Client.java"
    source.write_text(JAVA_CLIENT)
    security = workdir / "java.security.override"
    security.write_text(JAVA_SECURITY)
    store = workdir / "trust.p12"
    if not store.exists():
        result = run_tool(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(trusted_ca),
                           "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"],
                          timeout=timeout)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    args = ["java", f"-Djava.security.properties={security}", str(source), str(port), server_name, str(store),
            "changeit", protocol] + ([cipher_suite] if cipher_suite else [])
    result = run_tool(args, timeout=timeout)
    out = {"exit": str(result.returncode), "stderr": result.stderr.decode(errors="replace")[-3000:]}
    for line in result.stdout.decode(errors="replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def listener_like_context(lpki: LegacyPki, *, min_version: str = "TLSv1", ciphers: str = LEGACY_CIPHERS,
                          known_names: tuple[str, ...] | None = None) -> ssl.SSLContext:
    """A Python server playing what the tls listener should be (for self-checks of the clients, no bridge):
    the static listener identity, legacy versions at security level 0; with `known_names`, any other SNI
    gets the unrecognized_name alert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(lpki.listener_cert), str(lpki.listener_key))
    ctx.minimum_version = VERSIONS[min_version]
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    ctx.set_ciphers(ciphers)

    def on_sni(sslobj, name, _ctx):
        sslobj.seen_sni = name
        if known_names is not None and (name or "").lower() not in known_names:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    ctx.sni_callback = on_sni
    return ctx
