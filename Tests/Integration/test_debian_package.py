"""The Debian package built by scripts/package: its files, conffiles, Depends, maintainer scripts, an
unpack into a scratch root with `dpkg --root`, and upgrades over a config the operator changed (dpkg in an
overlay of this system, see below; needs root).

The package is built from a release binary when one is there (TLS_BRIDGE_RELEASE_BIN, or
.build/release/tls-bridge built with --static-swift-stdlib --disable-local-rpath); otherwise from a small C
stand-in linked against the same libraries (libevent's four, OpenSSL, zlib, libstdc++), so that
dpkg-shlibdeps maps real NEEDED entries without a second release build. Installing, upgrading and purging it
under a booted systemd is scripts/systemd-test's job (minutes, root).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "scripts" / "package"
UNIT = REPO / "systemd" / "tls-bridge.service"
SAMPLE = REPO / "conf" / "tls-bridge.toml"
VERSION = re.search(r'static let version = "([^"]+)"',
                    (REPO / "Sources" / "tls-bridge" / "TLSBridgeCommand.swift").read_text()).group(1)
RUNTIME_PACKAGES = ("libc6", "libevent-2.1-7", "libevent-core-2.1-7", "libevent-extra-2.1-7",
                    "libevent-openssl-2.1-7", "libevent-pthreads-2.1-7", "libssl3", "zlib1g", "libstdc++6")

STAND_IN = r"""
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <zlib.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "version") == 0) { puts("tls-bridge stand-in"); return 0; }
    /* reference one symbol of each library so that every one stays NEEDED */
    return event_get_version() && bufferevent_openssl_get_ssl(0) == 0 && evdns_base_free != 0
        && evthread_use_pthreads != 0 && OPENSSL_version_major() && zlibVersion() ? 0 : 1;
}
"""


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: dpkg-dev, binutils, gcc)")
    return path


def _static_release_binary() -> Path | None:
    candidate = Path(os.environ.get("TLS_BRIDGE_RELEASE_BIN", REPO / ".build" / "release" / "tls-bridge"))
    if not candidate.is_file():
        return None
    dynamic = subprocess.run(["objdump", "-p", str(candidate)], capture_output=True, text=True, timeout=30).stdout
    if "libswiftCore" in dynamic or re.search(r"^\s*(RUNPATH|RPATH)\s", dynamic, re.M):
        return None  # not built with --static-swift-stdlib --disable-local-rpath: scripts/package refuses it
    return candidate


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "objdump", "strip"):
        _need(tool)
    work = tmp_path_factory.mktemp("package")
    binary = _static_release_binary()
    if binary is None:
        _need("cc")
        source = work / "stand-in.c"
        source.write_text(STAND_IN)
        binary = work / "tls-bridge"
        subprocess.run(["cc", "-O1", "-o", str(binary), str(source), "-Wl,--no-as-needed", "-levent_openssl",
                        "-levent_core", "-levent_extra", "-levent_pthreads", "-levent", "-lssl", "-lcrypto", "-lz",
                        "-lstdc++"],
                       check=True, capture_output=True, timeout=60)
    out = work / "out"
    result = subprocess.run([str(PACKAGE), "--binary", str(binary), "--out", str(out), "--version", VERSION],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"scripts/package failed:\n{result.stdout}\n{result.stderr}"
    deb = out / f"tls-bridge_{VERSION}_amd64.deb"
    assert deb.is_file(), f"no {deb.name} in {list(out.iterdir())}"
    return deb, binary


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def _control_file(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, timeout=30,
                          check=True).stdout and subprocess.run(
        f"dpkg-deb --ctrl-tarfile '{deb}' | tar -xOf - ./{name}", shell=True, capture_output=True, text=True,
        timeout=30, check=True).stdout


def test_package_holds_the_binary_unit_config_and_logrotate(built):
    deb, _ = built
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    entries = {}
    for line in listing.splitlines():
        fields = line.split()
        entries[fields[-1].lstrip(".")] = (fields[0], fields[1])
    expected = {
        "/usr/bin/tls-bridge": ("-rwxr-xr-x", "root/root"),
        "/lib/systemd/system/tls-bridge.service": ("-rw-r--r--", "root/root"),
        "/etc/tls-bridge/": ("drwxr-x---", "root/root"),  # the postinst gives it to group tls-bridge
        "/etc/tls-bridge/tls-bridge.toml": ("-rw-r-----", "root/root"),
        "/etc/logrotate.d/tls-bridge": ("-rw-r--r--", "root/root"),
        "/usr/share/doc/tls-bridge/copyright": ("-rw-r--r--", "root/root"),
        "/usr/share/doc/tls-bridge/changelog.gz": ("-rw-r--r--", "root/root"),
    }
    for path, attributes in expected.items():
        assert entries.get(path) == attributes, f"{path}: {entries.get(path)} in\n{listing}"
    assert not any(path.startswith("/usr/local") for path in entries), listing


def test_files_under_etc_are_conffiles(built):
    deb, _ = built
    conffiles = _control_file(deb, "conffiles").split()
    assert sorted(conffiles) == ["/etc/logrotate.d/tls-bridge", "/etc/tls-bridge/tls-bridge.toml"]


def test_depends_come_from_the_binarys_libraries(built):
    deb, binary = built
    depends = [d.strip() for d in _field(deb, "Depends").split(",")]
    names = {re.match(r"[a-z0-9.+-]+", d).group(0) for d in depends}
    for package in RUNTIME_PACKAGES:
        assert package in names, f"{package} missing from Depends: {depends}"
    assert "adduser" in names  # the postinst creates the system user with it
    assert "procps" not in names  # the unit signals with the shell's built-in kill
    assert not any(n.startswith(("swift", "libswift")) for n in names)
    # each NEEDED library is owned by a package that is in Depends
    needed = re.findall(r"^\s*NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", str(binary)], capture_output=True,
                                                               text=True, timeout=30).stdout, re.M)
    for library in needed:
        owner = subprocess.run(["dpkg", "-S", f"*/{library}"], capture_output=True, text=True, timeout=30).stdout
        owners = {line.split(":")[0] for line in owner.splitlines() if ":" in line}
        assert owners & names, f"{library} (from {owners}) not covered by Depends {sorted(names)}"
    assert _field(deb, "Package") == "tls-bridge" and _field(deb, "Version") == VERSION
    assert _field(deb, "Architecture") == "amd64"


def test_packaged_binary_is_stripped_and_has_no_runpath(built):
    deb, _ = built
    _need("file")
    root = Path(str(deb) + ".x")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=60)
    binary = root / "usr/bin/tls-bridge"
    assert "not stripped" not in subprocess.run(["file", str(binary)], capture_output=True, text=True).stdout
    dynamic = subprocess.run(["objdump", "-p", str(binary)], capture_output=True, text=True, timeout=30).stdout
    assert not re.search(r"^\s*(RUNPATH|RPATH)\s", dynamic, re.M)
    # the unit and the config are the repository's, unchanged: the unit already names /usr/bin
    assert (root / "lib/systemd/system/tls-bridge.service").read_text() == UNIT.read_text()
    assert (root / "etc/tls-bridge/tls-bridge.toml").read_text() == SAMPLE.read_text()
    assert "ExecStart=/usr/bin/tls-bridge run" in UNIT.read_text()


def test_maintainer_scripts_create_the_user_and_manage_the_unit(built):
    deb, _ = built
    postinst, prerm, postrm = (_control_file(deb, name) for name in ("postinst", "prerm", "postrm"))
    for name, text in (("postinst", postinst), ("prerm", prerm), ("postrm", postrm)):
        check = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, timeout=10)
        assert check.returncode == 0, f"{name}: {check.stderr}"
        assert text.startswith("#!/bin/sh\nset -e\n"), name
    assert "adduser --system --group" in postinst and "getent passwd tls-bridge" in postinst
    assert "chgrp tls-bridge" in postinst and "dpkg-statoverride --list" in postinst
    assert "deb-systemd-helper enable tls-bridge.service" in postinst
    assert "try-restart tls-bridge.service" in postinst  # an upgrade restarts a running bridge
    assert '"$1" = remove' in prerm and "deb-systemd-invoke stop tls-bridge.service" in prerm
    assert "deb-systemd-helper purge tls-bridge.service" in postrm and "rm -rf /var/log/tls-bridge" in postrm


def test_unpacks_into_a_scratch_root_with_dpkg(built, tmp_path):
    """`dpkg --root` registers the package and its conffiles (maintainer scripts do not run at unpack)."""
    deb, _ = built
    root = tmp_path / "root"
    for directory in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc", "usr/bin",
                      "lib", "var/log"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    (root / "var/lib/dpkg/available").write_text("")
    result = subprocess.run(["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "--unpack", str(deb)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # conffiles wait as .dpkg-new until configure decides between them and an operator's version
    assert (root / "usr/bin/tls-bridge").is_file() and (root / "etc/tls-bridge/tls-bridge.toml.dpkg-new").is_file()
    status = (root / "var/lib/dpkg/status").read_text()
    assert "Package: tls-bridge" in status and "Status: install ok unpacked" in status
    conffiles = re.search(r"Conffiles:\n((?: .*\n)+)", status)
    assert conffiles and sorted(line.split()[0] for line in conffiles.group(1).splitlines()) == \
        ["/etc/logrotate.d/tls-bridge", "/etc/tls-bridge/tls-bridge.toml"], status
    listed = subprocess.run(["dpkg", f"--root={root}", "-L", "tls-bridge"], capture_output=True, text=True,
                            timeout=30).stdout
    assert "/lib/systemd/system/tls-bridge.service" in listed


def test_package_refuses_a_binary_with_a_runpath(tmp_path):
    """SwiftPM links $ORIGIN in unless --disable-local-rpath: lintian refuses a custom library search path."""
    _need("cc")
    source = tmp_path / "stand-in.c"
    source.write_text(STAND_IN)
    binary = tmp_path / "tls-bridge"
    subprocess.run(["cc", "-o", str(binary), str(source), "-Wl,-rpath,$ORIGIN", "-Wl,--no-as-needed",
                    "-levent_openssl", "-levent_core", "-levent_extra", "-levent_pthreads", "-levent", "-lssl",
                    "-lcrypto", "-lz"], check=True, capture_output=True, timeout=60)
    result = subprocess.run([str(PACKAGE), "--binary", str(binary), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--disable-local-rpath" in result.stderr, result.stderr
    assert not list(tmp_path.glob("out/*.deb"))


def test_package_refuses_a_binary_with_the_swift_runtime_linked_dynamically(tmp_path):
    """A debug build (or one without --static-swift-stdlib) would need /opt/swift on the target."""
    _need("dpkg-deb")
    debug = Path(os.environ.get("TLS_BRIDGE_BIN", REPO / ".build" / "debug" / "tls-bridge"))
    if not debug.is_file():
        pytest.skip(f"no debug build at {debug}")
    if "libswiftCore" not in subprocess.run(["objdump", "-p", str(debug)], capture_output=True, text=True,
                                            timeout=30).stdout:
        pytest.skip(f"{debug} links the Swift runtime statically")
    result = subprocess.run([str(PACKAGE), "--binary", str(debug), "--out", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "--static-swift-stdlib" in result.stderr, result.stderr
    assert not list(tmp_path.glob("*.deb"))


# --- upgrades: dpkg's conffile handling, in a throw-away copy of this system --------------------------------
#
# Conffiles are decided when the package is configured, which runs the postinst, so a bare `dpkg --root`
# scratch root (no shell, no adduser) cannot show it. Each test runs dpkg in a private mount namespace,
# chrooted into an overlay of this host's root filesystem whose writes go to a tmpfs: the real dpkg,
# adduser and the package's Depends, and nothing of the host's /etc or dpkg database changes. The
# namespace, and with it every mount, ends with the test's process.

OVERLAY_SCRIPT = r"""
set -eu
mount -t tmpfs -o mode=0700 tls-bridge-upgrade-test "$LAYERS"
mkdir "$LAYERS/upper" "$LAYERS/work" "$LAYERS/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$LAYERS/upper,workdir=$LAYERS/work" "$LAYERS/merged"
root="$LAYERS/merged"
# Never run dpkg on the host itself: stop unless the root is the overlay.
[ "$(findmnt -n -o FSTYPE "$root")" = overlay ] || { echo "no overlay at $root" >&2; exit 97; }
mount -t tmpfs tmpfs "$root/run"  # no /run/systemd/system: the postinst leaves systemctl alone
inside() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" </dev/null; }
step() { echo "== $*" >>"$OUT/dpkg.log"; }
inside dpkg --purge tls-bridge >/dev/null 2>&1 || true
step "dpkg -i $OLD_DEB"
inside dpkg -i "$OLD_DEB" >>"$OUT/dpkg.log" 2>&1
if [ -n "$ADMIN_LINE" ]; then
    printf '%s\n' "$ADMIN_LINE" >>"$root/etc/tls-bridge/tls-bridge.toml"
fi
step "dpkg $DPKG_OPTIONS -i $NEW_DEB"
set +e
inside dpkg $DPKG_OPTIONS -i "$NEW_DEB" >>"$OUT/dpkg.log" 2>&1
echo $? >"$OUT/upgrade.rc"
set -e
inside dpkg-query -W -f '${Version} ${Status}' tls-bridge >"$OUT/status"
inside stat -c '%U:%G %a' /etc/tls-bridge/tls-bridge.toml >"$OUT/config.owner"
cp -a "$root/etc/tls-bridge/." "$OUT/etc-tls-bridge/"
"""


def _need_root_namespace() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: a private mount namespace with an overlay of / (unshare, mount, chroot)")
    for tool in ("unshare", "findmnt", "chroot"):
        _need(tool)
    if "overlay" not in Path("/proc/filesystems").read_text():
        pytest.skip("this kernel has no overlay filesystem")


@pytest.fixture(scope="module")
def next_version(built, tmp_path_factory):
    """The same package as `built` one version later, and a variant of it whose sample config changed."""
    _, binary = built
    work = tmp_path_factory.mktemp("next")
    version = f"{VERSION}+next1"
    result = subprocess.run([str(PACKAGE), "--binary", str(binary), "--out", str(work), "--version", version],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    same_sample = work / f"tls-bridge_{version}_amd64.deb"
    # The variant: repacked with one more line in the sample (and its md5sums entry), a later version.
    tree = work / "tree"
    subprocess.run(["dpkg-deb", "-R", str(same_sample), str(tree)], check=True, timeout=60)
    sample = tree / "etc/tls-bridge/tls-bridge.toml"
    new_sample = sample.read_text() + "# a line the next version's sample adds\n"
    sample.write_text(new_sample)
    control = tree / "DEBIAN/control"
    control.write_text(re.sub(r"^Version: .*$", f"Version: {VERSION}+next2", control.read_text(), flags=re.M))
    sums = subprocess.run("find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum",
                          shell=True, cwd=tree, capture_output=True, text=True, timeout=60, check=True).stdout
    (tree / "DEBIAN/md5sums").write_text(sums)
    changed_sample = work / f"tls-bridge_{VERSION}+next2_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(changed_sample)],
                   check=True, capture_output=True, timeout=120)
    return same_sample, changed_sample, new_sample


def _upgrade(tmp_path: Path, old: Path, new: Path, *, admin_line: str = "", dpkg_options: str = "") -> Path:
    """Installs `old`, appends `admin_line` to its config (if any), installs `new` over it with
    `dpkg_options`; returns a directory with the outcome (upgrade.rc, status, config.owner, etc-tls-bridge/)."""
    _need_root_namespace()
    out = tmp_path / "outcome"
    (out / "etc-tls-bridge").mkdir(parents=True)
    layers = tmp_path / "layers"
    layers.mkdir()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LAYERS": str(layers), "OUT": str(out), "OLD_DEB": str(old),
           "NEW_DEB": str(new), "ADMIN_LINE": admin_line, "DPKG_OPTIONS": dpkg_options}
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", OVERLAY_SCRIPT],
                            env=env, capture_output=True, text=True, timeout=180)
    log = (out / "dpkg.log").read_text() if (out / "dpkg.log").exists() else ""
    assert result.returncode == 0, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}\n{log}"
    return out


def test_an_upgrade_keeps_the_config_the_operator_changed(built, next_version, tmp_path):
    """The common case: the sample did not change between versions. dpkg keeps the operator's file without
    asking (stdin is /dev/null here, as under unattended-upgrades) and leaves nothing beside it."""
    deb, _ = built
    same_sample, _, _ = next_version
    out = _upgrade(tmp_path, deb, same_sample, admin_line='# the operator\'s change: listen = "127.0.0.1:9999"')
    log = (out / "dpkg.log").read_text()
    assert (out / "upgrade.rc").read_text().strip() == "0", log
    assert (out / "status").read_text() == f"{VERSION}+next1 install ok installed", log
    config = out / "etc-tls-bridge" / "tls-bridge.toml"
    assert config.read_text() == SAMPLE.read_text() + '# the operator\'s change: listen = "127.0.0.1:9999"\n'
    assert sorted(p.name for p in (out / "etc-tls-bridge").iterdir()) == ["tls-bridge.toml"], log
    # the postinst leaves it as it was: root's, readable by the service's group only
    assert (out / "config.owner").read_text().strip() == "root:tls-bridge 640"


def test_an_upgrade_with_a_new_sample_keeps_the_operators_config_and_puts_the_sample_beside_it(
        built, next_version, tmp_path):
    """Both changed: with --force-confold (apt's -o Dpkg::Options::=--force-confold) the operator's file
    stays and the new sample lands beside it as tls-bridge.toml.dpkg-dist."""
    deb, _ = built
    _, changed_sample, new_sample = next_version
    out = _upgrade(tmp_path, deb, changed_sample, admin_line="# the operator's change",
                   dpkg_options="--force-confdef --force-confold")
    log = (out / "dpkg.log").read_text()
    assert (out / "upgrade.rc").read_text().strip() == "0", log
    assert (out / "status").read_text() == f"{VERSION}+next2 install ok installed", log
    etc = out / "etc-tls-bridge"
    assert (etc / "tls-bridge.toml").read_text() == SAMPLE.read_text() + "# the operator's change\n"
    assert (etc / "tls-bridge.toml.dpkg-dist").read_text() == new_sample
    assert "Keeping old config file as default." in log, log


def test_an_upgrade_replaces_a_sample_config_nobody_changed(built, next_version, tmp_path):
    """The other half of conffile handling: an untouched sample follows the package."""
    deb, _ = built
    _, changed_sample, new_sample = next_version
    out = _upgrade(tmp_path, deb, changed_sample)
    log = (out / "dpkg.log").read_text()
    assert (out / "upgrade.rc").read_text().strip() == "0", log
    assert (out / "etc-tls-bridge" / "tls-bridge.toml").read_text() == new_sample
    assert sorted(p.name for p in (out / "etc-tls-bridge").iterdir()) == ["tls-bridge.toml"], log
