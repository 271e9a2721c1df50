"""The merchant's real web servers from Debian, started on loopback by the tests: Apache 2.4 (prefork, mod_php,
mod_remoteip, mod_ssl) and nginx (realip, ssl).

Each server runs from its own fresh directory under /tmp (config, logs, pid file, page), on free ports of
127.0.0.1, in the foreground, with one or more `Site`s: a port, how the server learns the client's address there,
and whether it speaks TLS 1.0 only (the merchant's legacy HTTPS). Every page answers any path with what the
server (and, on Apache, PHP) believes about the client: its address and the address-claiming headers as the
application would read them (`Seen`).

Started with subprocess in a session of their own, waited for (bounded) until every port listens, stopped by
their PID (SIGTERM, then SIGKILL to the process group that start() created, for Apache's prefork children).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .bridge import _listening_ports, free_port

APACHE_BIN = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
NGINX_BIN = "/usr/sbin/nginx"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LEGACY_TLS_CIPHERS = "DEFAULT:@SECLEVEL=0"   # TLS 1.0 needs security level 0 with Debian 12's OpenSSL 3
PROXY_PROTOCOL = "proxy-protocol"           # Site.client_address: the PROXY protocol (Apache only)
PAGE = "/notify.php"                        # Apache's PHP page; nginx answers every path the same way


@dataclass(frozen=True)
class Site:
    """One port of a web server.

    client_address: the header the server trusts from 127.0.0.1 ("X-Forwarded-For" / "X-Real-IP": mod_remoteip's
    RemoteIPHeader, nginx's real_ip_header), PROXY_PROTOCOL (Apache's RemoteIPProxyProtocol), both (a tuple), or
    None (the server's peer is the client). tls: TLS 1.0 only, the Backend CA's merchant.local certificate.
    underscores (nginx): `underscores_in_headers on`, so `X_Real_IP` is read as `$http_x_real_ip`, as many
    servers and frameworks other than Apache 2.4 and default nginx do.
    """

    name: str
    client_address: str | tuple[str, ...] | None = "X-Forwarded-For"
    tls: bool = False
    underscores: bool = False

    @property
    def modes(self) -> tuple[str, ...]:
        c = self.client_address
        return () if c is None else (c,) if isinstance(c, str) else tuple(c)

    @property
    def header(self) -> str | None:
        return next((m for m in self.modes if m != PROXY_PROTOCOL), None)


@dataclass
class Seen:
    """What the application behind a site was told about one request."""

    remote_addr: str
    claims: dict[str, str]   # address-claiming values as the application reads them (non-empty ones only)
    raw: str                 # the page's whole answer, for messages


PHP_PAGE = r"""<?php
// What a notification handler can read about its peer: REMOTE_ADDR (after mod_remoteip) and every HTTP_*
// variable PHP made from the request's headers; `headers` is Apache's raw list (getallheaders), for messages.
$server = ['REMOTE_ADDR' => $_SERVER['REMOTE_ADDR']];
foreach ($_SERVER as $name => $value) {
    if (strncmp($name, 'HTTP_', 5) === 0) { $server[$name] = $value; }
}
$out = json_encode(['server' => $server, 'headers' => getallheaders()]) . "\n";
header('Content-Type: application/json');
header('Content-Length: ' . strlen($out));
echo $out;
"""

NGINX_ANSWER = ("remote_addr=$remote_addr\\nrealip_remote_addr=$realip_remote_addr\\n"
                "x-forwarded-for=$http_x_forwarded_for\\nx-real-ip=$http_x_real_ip\\nforwarded=$http_forwarded\\n")


class WebServer:
    """A foreground server process with its own directory and one port per site."""

    program = "web server"
    packages = ""      # the Debian packages that provide it, for the message when it is missing

    @classmethod
    def available(cls) -> bool:
        raise NotImplementedError

    def __init__(self, sites: list[Site], *, cert: Path | None = None, key: Path | None = None):
        assert len({s.name for s in sites}) == len(sites), "site names must differ"
        assert cert or not any(s.tls for s in sites), "a TLS site needs cert and key"
        self.sites = {s.name: s for s in sites}
        self.cert, self.key = cert, key
        self.ports: dict[str, int] = {}
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    # what the tests use ---------------------------------------------------------------------------------------
    def address(self, site: str) -> str:
        return f"127.0.0.1:{self.ports[site]}"

    def error_log(self) -> str:
        return self._read("error.log")

    def access_log(self) -> str:
        return self._read("access.log")

    def seen(self, body: bytes) -> Seen:
        raise NotImplementedError

    # lifecycle ------------------------------------------------------------------------------------------------
    def command(self, conf: Path) -> list[str]:
        raise NotImplementedError

    def config_text(self) -> str:
        raise NotImplementedError

    def prepare(self) -> None:
        """Files the config refers to, written before start."""

    def start(self) -> "WebServer":
        if not self.available():
            raise AssertionError(f"{self.program} missing: run scripts/setup --test (Debian packages {self.packages})")
        # A fresh 0755 directory under /tmp (pytest's are 0700 all the way up): Apache's children run as www-data.
        self.dir = Path(tempfile.mkdtemp(prefix=f"tls-bridge-{self.program}-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.ports = {name: free_port() for name in self.sites}
        self.prepare()
        conf = self.dir / f"{self.program}.conf"
        conf.write_text(self.config_text())
        self._out = open(self.dir / "stdout.log", "wb")
        self.proc = subprocess.Popen(self.command(conf), stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        wanted = set(self.ports.values())
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._out.close()
                raise AssertionError(f"{self.program} exited with {self.proc.returncode} before listening:\n"
                                     f"{self.diagnostics()}")
            if wanted <= _listening_ports():
                return self
            time.sleep(0.05)
        diagnostics = self.diagnostics()
        self.stop()
        raise AssertionError(f"{self.program} not listening on {sorted(wanted)} within {START_TIMEOUT} s:\n"
                             f"{diagnostics}")

    def stop(self) -> None:
        """SIGTERM to the PID start() got; after STOP_TIMEOUT, SIGKILL to the process group it created (its
        own session: only this server and its children are in it). Then the directory goes."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(timeout=10)
            if not self._out.closed:
                self._out.close()
        if self.dir is not None and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name}\n{self._read(name)[-3000:]}" for name in ("stdout.log", "error.log"))

    def _read(self, name: str) -> str:
        try:
            return (self.dir / name).read_text(errors="replace")
        except (FileNotFoundError, TypeError):
            return ""


class Apache(WebServer):
    """`apache2 -f <conf> -DFOREGROUND` with prefork and mod_php: the PHP page at PAGE prints `$_SERVER`.

    Per site: `RemoteIPHeader <header>` with `RemoteIPInternalProxy 127.0.0.1` (only the bridge is trusted),
    `RemoteIPProxyProtocol On`, and mod_ssl with `SSLProtocol TLSv1`. Started as root, the children run as
    www-data (User/Group), as on a Debian install.
    """

    program = "apache2"
    packages = "apache2, libapache2-mod-php"

    @classmethod
    def available(cls) -> bool:
        return os.access(APACHE_BIN, os.X_OK) and any(APACHE_MODULES.glob("libphp*.so"))

    def command(self, conf: Path) -> list[str]:
        return [APACHE_BIN, "-f", str(conf), "-DFOREGROUND"]

    def prepare(self) -> None:
        docroot = self.dir / "htdocs"
        docroot.mkdir(mode=0o755)
        (docroot / PAGE.lstrip("/")).write_text(PHP_PAGE)
        (docroot / PAGE.lstrip("/")).chmod(0o644)

    def config_text(self) -> str:
        d = self.dir
        php = sorted(APACHE_MODULES.glob("libphp*.so"))[-1]
        modules = {"mpm_prefork_module": "mod_mpm_prefork.so", "authz_core_module": "mod_authz_core.so",
                   "remoteip_module": "mod_remoteip.so"}
        if any(s.tls for s in self.sites.values()):
            modules["ssl_module"] = "mod_ssl.so"
        lines = [f"ServerRoot {d}", f"DefaultRuntimeDir {d}", f"PidFile {d / 'apache2.pid'}",
                 f"ErrorLog {d / 'error.log'}", "LogLevel info", "ServerName 127.0.0.1",
                 *(f"LoadModule {name} {APACHE_MODULES / file}" for name, file in modules.items()),
                 f"LoadModule php_module {php}",
                 'LogFormat "%a peer=%{c}a \\"%r\\" %>s" bridged',
                 f"CustomLog {d / 'access.log'} bridged",
                 "StartServers 2", "MinSpareServers 2", "MaxSpareServers 4", "MaxRequestWorkers 16",
                 "Timeout 10", "KeepAlive On", "KeepAliveTimeout 5", "MaxKeepAliveRequests 20",
                 f"DocumentRoot {d / 'htdocs'}",
                 f"<Directory {d / 'htdocs'}>", "    Require all granted", "</Directory>",
                 '<FilesMatch "\\.php$">', "    SetHandler application/x-httpd-php", "</FilesMatch>"]
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        for name, site in self.sites.items():
            port = self.ports[name]
            lines += [f"Listen 127.0.0.1:{port}", f"<VirtualHost 127.0.0.1:{port}>"]
            if site.header:
                lines += [f"    RemoteIPHeader {site.header}", "    RemoteIPInternalProxy 127.0.0.1"]
            if PROXY_PROTOCOL in site.modes:
                lines.append("    RemoteIPProxyProtocol On")
            if site.tls:
                lines += ["    SSLEngine on", "    SSLProtocol TLSv1", f"    SSLCipherSuite {LEGACY_TLS_CIPHERS}",
                          f"    SSLCertificateFile {self.cert}", f"    SSLCertificateKeyFile {self.key}"]
            lines.append("</VirtualHost>")
        return "\n".join(lines) + "\n"

    def seen(self, body: bytes) -> Seen:
        page = json.loads(body)
        server = page["server"]
        claims = {k: v for k, v in server.items()
                  if k in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED") and v}
        return Seen(server["REMOTE_ADDR"], claims, body.decode(errors="replace"))


class Nginx(WebServer):
    """`nginx -p <dir> -e <dir>/error.log -c <conf> -g 'daemon off;'` with `master_process off` (one process).

    Per site: `set_real_ip_from 127.0.0.1` with `real_ip_header <header>`, `ssl_protocols TLSv1`, and
    optionally `underscores_in_headers on`. Every path answers `$remote_addr` and the address-claiming
    `$http_*` variables, one `name=value` a line.
    """

    program = "nginx"
    packages = "nginx"

    @classmethod
    def available(cls) -> bool:
        return os.access(NGINX_BIN, os.X_OK)

    def command(self, conf: Path) -> list[str]:
        return [NGINX_BIN, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(conf),
                "-g", "daemon off;"]

    def config_text(self) -> str:
        d = self.dir
        lines = ["master_process off;", f"pid {d / 'nginx.pid'};", f"error_log {d / 'error.log'} info;",
                 "events { worker_connections 256; }", "http {",
                 '    log_format bridged \'$remote_addr peer=$realip_remote_addr "$request" $status\';',
                 f"    access_log {d / 'access.log'} bridged;",
                 *(f"    {kind}_temp_path {d / kind};"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
                 "    keepalive_timeout 5;", "    client_header_timeout 10;", "    client_body_timeout 10;"]
        for name, site in self.sites.items():
            lines += ["    server {", f"        listen 127.0.0.1:{self.ports[name]}{' ssl' if site.tls else ''};"]
            if site.header:
                lines += ["        set_real_ip_from 127.0.0.1;", f"        real_ip_header {site.header};"]
            assert PROXY_PROTOCOL not in site.modes, "the nginx sites here read headers only"
            if site.underscores:
                lines.append("        underscores_in_headers on;")
            if site.tls:
                lines += ["        ssl_protocols TLSv1;", f'        ssl_ciphers "{LEGACY_TLS_CIPHERS}";',
                          f"        ssl_certificate {self.cert};", f"        ssl_certificate_key {self.key};"]
            lines += ["        default_type text/plain;", f'        location / {{ return 200 "{NGINX_ANSWER}"; }}',
                      "    }"]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def seen(self, body: bytes) -> Seen:
        text = body.decode(errors="replace")
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        claims = {k: v for k, v in values.items() if k in ("x-forwarded-for", "x-real-ip", "forwarded") and v}
        return Seen(values["remote_addr"], claims, text)
