"""Old TLS clients as testssl.sh recorded them, and an `openssl s_client` command line that plays one.

testssl.sh (Debian's `testssl.sh` package) keeps, per client, its limits and its real ClientHello bytes in
`/etc/testssl/client-simulation.txt` (`names+=`, `ciphers+=`, `curves+=`, `handshakebytes+=`, ...). This module
reads that table, decodes the recorded ClientHello (TLS format or the SSLv2-compatible one), and builds the
`s_client` arguments and OpenSSL configuration that make this machine's OpenSSL 3 send the same offer:
TLS 1.0 only, the same suites in the same order (less those this OpenSSL does not have: 3DES, RC4, DES,
IDEA, export), the same extensions where OpenSSL can be told (SNI, session ticket, status_request, the
supported groups list; no extended_master_secret or encrypt_then_mac unless recorded).

What OpenSSL 3 cannot imitate (an SSLv2-format record, the renegotiation_info extension instead of the SCSV, the
ec_point_formats list, the order of extensions) is named in `test_legacy_stacks_end_to_end.py`.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CLIENT_TABLE = Path("/etc/testssl/client-simulation.txt")

SCSV = 0x00FF                 # TLS_EMPTY_RENEGOTIATION_INFO_SCSV
EXT_SERVER_NAME = 0
EXT_STATUS_REQUEST = 5
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SESSION_TICKET = 35
EXT_RENEGOTIATION_INFO = 0xFF01

# An OpenSSL configuration for the client process: no extended_master_secret extension (s_client has no
# flag for it; SSL_CONF's Options does it for every SSL_CTX the process makes).
NO_EMS_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_module
[ssl_module]
system_default = recorded_client
[recorded_client]
Options = -ExtendedMasterSecret
"""


@dataclass(frozen=True)
class Hello:
    """A decoded ClientHello: record format ("tls" or "sslv2"), client version, suites (code points, in
    order), extensions (type → payload, in order; none in an SSLv2-format hello)."""
    format: str
    version: int
    suites: tuple[int, ...]
    extensions: dict[int, bytes]


@dataclass(frozen=True)
class RecordedClient:
    name: str                 # testssl's name, e.g. "Java 6u45"
    ciphers: tuple[str, ...]  # its cipher list as testssl names it (OpenSSL names), in its order
    curves: tuple[str, ...]   # its supported groups, in order (empty when it sends none)
    highest_protocol: int     # 0x0301 for TLS 1.0
    hello: Hello              # its recorded ClientHello

    @property
    def playable_ciphers(self) -> list[str]:
        """Its suites that this OpenSSL has, in its order, without repeats."""
        have = openssl_cipher_codes()
        out: list[str] = []
        for name in self.ciphers:
            if name in have and name not in out:
                out.append(name)
        return out

    def s_client_args(self, sni: str) -> list[str]:
        """`openssl s_client` arguments (no -connect) that send this client's offer; `sni` is sent only if the
        recorded client sent a server name. Run with `env=client_env(...)` when it sent no EMS."""
        ext = self.hello.extensions
        assert self.highest_protocol == 0x0301, f"{self.name}: only TLS 1.0 clients are played here"
        args = ["-tls1", "-cipher", ":".join(self.playable_ciphers) + ":@SECLEVEL=0"]
        args += ["-servername", sni] if EXT_SERVER_NAME in ext else ["-noservername"]
        if EXT_SESSION_TICKET not in ext:
            args.append("-no_ticket")
        if EXT_ENCRYPT_THEN_MAC not in ext:
            args.append("-no_etm")
        if EXT_STATUS_REQUEST in ext:
            args.append("-status")
        if EXT_SUPPORTED_GROUPS in ext:
            args += ["-groups", ":".join(self.curves)]
        return args

    @property
    def sends_ems(self) -> bool:
        return EXT_EXTENDED_MASTER_SECRET in self.hello.extensions


def client_env(client: RecordedClient, workdir: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment for the client process: OPENSSL_CONF turning EMS off unless the client sends it."""
    env = dict(base)
    if not client.sends_ems:
        conf = workdir / "no-ems-openssl.cnf"
        conf.write_text(NO_EMS_CONF)
        env["OPENSSL_CONF"] = str(conf)
    return env


# --- the table ---------------------------------------------------------------------------------------------------

def available() -> bool:
    return CLIENT_TABLE.is_file()


@lru_cache(maxsize=None)
def _table() -> dict[str, dict[str, str]]:
    clients: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in CLIENT_TABLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r'^\s*(\w+)\+=\((.*)\)\s*$', line)
        if not match:
            continue
        key, value = match.group(1), match.group(2).strip()
        value = value[1:-1] if value.startswith('"') and value.endswith('"') else value
        if key == "names":
            current = clients.setdefault(value, {})
        if current is not None:
            current[key] = value
    return clients


def recorded_client(name: str) -> RecordedClient:
    entry = _table().get(name)
    assert entry is not None, f"{name!r} is not in {CLIENT_TABLE}"
    return RecordedClient(
        name=name,
        ciphers=tuple(c for c in entry["ciphers"].split(":") if c),
        curves=tuple(c for c in entry.get("curves", "").split(":") if c),
        highest_protocol=int(entry["highest_protocol"], 16),
        hello=decode_hello(bytes.fromhex(entry["handshakebytes"])),
    )


@lru_cache(maxsize=None)
def openssl_cipher_codes() -> dict[str, int]:
    """OpenSSL name → code point, for every TLS ≤ 1.2 suite this OpenSSL has (at security level 0)."""
    out = subprocess.run(["openssl", "ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    codes = {}
    for line in out.splitlines():
        match = re.match(r"^\s*0x([0-9A-F]{2}),0x([0-9A-F]{2})\s+-\s+(\S+)", line)
        if match:
            codes[match.group(3)] = int(match.group(1) + match.group(2), 16)
    return codes


# --- ClientHello bytes --------------------------------------------------------------------------------------------

def decode_hello(data: bytes) -> Hello:
    """Decode a ClientHello record: TLS (0x16 …) or SSLv2-compatible (high bit of the first length byte set)."""
    if data[0] & 0x80:
        # SSLv2 record: 2-byte length, msg type 1, version, spec/session/challenge lengths, 3-byte cipher specs
        msg_type, version, spec_len = data[2], struct.unpack("!H", data[3:5])[0], struct.unpack("!H", data[5:7])[0]
        assert msg_type == 1, f"SSLv2 message type {msg_type}"
        specs = data[11:11 + spec_len]
        suites = tuple(struct.unpack("!H", specs[i + 1:i + 3])[0] for i in range(0, len(specs), 3) if specs[i] == 0)
        return Hello("sslv2", version, suites, {})
    assert data[0] == 0x16 and data[5] == 1, f"not a ClientHello record: {data[:8].hex()}"
    body = data[9:9 + int.from_bytes(data[6:9], "big")]
    version = struct.unpack("!H", body[:2])[0]
    pos = 34
    pos += 1 + body[pos]                                       # session id
    suites_len = struct.unpack("!H", body[pos:pos + 2])[0]
    suites = tuple(struct.unpack("!H", body[pos + 2 + i:pos + 4 + i])[0] for i in range(0, suites_len, 2))
    pos += 2 + suites_len
    pos += 1 + body[pos]                                       # compression methods
    extensions: dict[int, bytes] = {}
    if pos + 2 <= len(body):
        end = pos + 2 + struct.unpack("!H", body[pos:pos + 2])[0]
        pos += 2
        while pos + 4 <= end:
            kind, length = struct.unpack("!HH", body[pos:pos + 4])
            extensions[kind] = body[pos + 4:pos + 4 + length]
            pos += 4 + length
    return Hello("tls", version, suites, extensions)


def capture_hello(args: list[str], env: dict[str, str], timeout: float = 10.0) -> Hello:
    """Run `openssl s_client <args>` against a socket that reads one ClientHello record and closes; decode it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(timeout)
    got: dict[str, bytes] = {}

    def read_one() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(timeout)
            data = b""
            while len(data) < 5 or len(data) < 5 + struct.unpack("!H", data[3:5])[0]:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            got["hello"] = data

    reader = threading.Thread(target=read_one, daemon=True)
    reader.start()
    try:
        subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.getsockname()[1]}", *args],
                       input=b"", capture_output=True, env=env, timeout=timeout)
    finally:
        reader.join(timeout)
        server.close()
    assert "hello" in got, "s_client sent no ClientHello"
    return decode_hello(got["hello"])
