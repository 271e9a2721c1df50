"""deploy/kubernetes/: the merchant pod with tls-bridge as its sidecar, validated offline (no cluster here).

The manifests are parsed (python3-yaml) and held against each other and against the config they ship: the
sidecar's security settings, probes that run `tls-bridge health` on the config the ConfigMap mounts and whose
[admin] endpoint is loopback, the notify port the Service targets, a grace period covering drain_timeout, the
keys copied to 0600 files at the paths the config names, resources from the measured memory per session; and
the ConfigMap's config passes `tls-bridge check` once its certificate paths point at test certificates.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support.bridge import run_cli

yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
IMAGE_UID = 10001


def _documents() -> list[dict]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def _one(kind: str, name: str | None = None) -> dict:
    found = [d for d in _documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


def _pod() -> dict:
    return _one("Deployment")["spec"]["template"]


def _container(name: str) -> dict:
    spec = _pod()["spec"]
    found = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def _config_text() -> str:
    return _one("ConfigMap", "tls-bridge-config")["data"]["tls-bridge.toml"]


def _config() -> dict:
    return tomllib.loads(_config_text())


def _seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", duration).groups()
    return int(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def _mount_of(container: dict, volume: str) -> str:
    return next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume)


def test_every_manifest_parses_with_kind_and_name():
    documents = _documents()
    assert {d["kind"] for d in documents} == {"Namespace", "ConfigMap", "Secret", "Deployment", "Service",
                                              "NetworkPolicy"}
    namespace = _one("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for document in documents:
        assert document["apiVersion"] and document["metadata"]["name"]
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == namespace["metadata"]["name"], document["metadata"]["name"]


def test_the_bridge_is_a_native_sidecar_started_before_the_merchant_app():
    spec = _pod()["spec"]
    names = [c["name"] for c in spec["initContainers"]]
    assert names == ["copy-keys", "tls-bridge"]  # keys first, then the bridge, then the app
    assert _container("tls-bridge")["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["merchant"]


@pytest.mark.parametrize("name", ["copy-keys", "tls-bridge", "merchant"])
def test_every_container_is_locked_down(name):
    """The namespace enforces the "restricted" Pod Security Standard: the example app meets it too."""
    security = _container(name)["securityContext"]
    assert security["runAsNonRoot"] is True
    if name != "merchant":
        assert security["runAsUser"] == IMAGE_UID and security["runAsGroup"] == IMAGE_UID
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "add" not in security["capabilities"]
    resources = _container(name)["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"] and resources["limits"]["cpu"]


def test_the_image_user_is_the_one_the_pod_runs_as():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", dockerfile, re.M)
    pod = _pod()["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["fsGroup"] == IMAGE_UID
    assert pod["automountServiceAccountToken"] is False


def test_probes_ask_the_running_bridge_on_the_mounted_config_with_a_loopback_admin_endpoint():
    bridge = _container("tls-bridge")
    config_path = _mount_of(bridge, "config") + "/tls-bridge.toml"
    config_volume = next(v for v in _pod()["spec"]["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == "tls-bridge-config"
    assert bridge["args"] == ["run", "--config", config_path]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = bridge[probe]
        command = spec["exec"]["command"]
        assert command[:4] == ["tls-bridge", "health", "--config", config_path], probe
        timeout = float(command[command.index("--timeout") + 1])
        assert timeout < spec["timeoutSeconds"], f"{probe}: health's own timeout must end before the probe's"
    admin = _config()["admin"]["listen"]
    assert admin.startswith("127.0.0.1:"), "the admin endpoint stays on loopback: the probes run inside the pod"


def test_the_service_reaches_the_notify_listener_port():
    config = _config()
    notify = next(l for l in config["listener"] if l["name"] == "notify")
    port = int(notify["listen"].rsplit(":", 1)[1])
    bridge = _container("tls-bridge")
    named = {p["name"]: p["containerPort"] for p in bridge["ports"]}
    service = _one("Service", "tls-bridge-notify")
    target = service["spec"]["ports"][0]["targetPort"]
    assert named[target] == port
    labels = _pod()["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    # the NetworkPolicy lets in only the notify port, from the same sources the listener allows
    policy = _one("NetworkPolicy")
    assert all(labels.get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    [rule] = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [port]
    assert [f["ipBlock"]["cidr"] for f in rule["from"]] == notify["allow_sources"]
    # the backend is the app's port in the same pod
    backend = next(b for b in config["backend"] if b["name"] == notify["backend"])
    app_port = next(p["containerPort"] for p in _container("merchant")["ports"] if p["name"] == "http")
    assert backend["address"] == f"127.0.0.1:{app_port}"
    assert service["spec"]["externalTrafficPolicy"] == "Local"  # allow_sources sees the gateway's address
    assert notify.get("allow_sources"), "a public notify listener narrows its sources"
    # the outbound listener stays on loopback: only the app in the same pod uses it
    plain = next(l for l in config["listener"] if l["name"] == "plain")
    assert plain["listen"].startswith("127.0.0.1:") and not plain.get("unsafe_listen_public")
    app_url = next(e["value"] for e in _container("merchant")["env"] if e["name"] == "PAYGENT_URL")
    assert app_url.startswith(f"http://{plain['listen']}/")


def test_the_grace_period_covers_the_drain_and_the_pre_stop_pause():
    grace = _pod()["spec"]["terminationGracePeriodSeconds"]
    drain = _seconds(_config()["limits"]["drain_timeout"])
    pre_stop = _container("tls-bridge")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert grace >= drain + float(pre_stop[1]), f"grace {grace} s < drain {drain} s + preStop {pre_stop[1]} s"


def test_keys_are_copied_to_0600_files_at_the_paths_the_config_names():
    config = _config()
    copy = _container("copy-keys")
    script = " ".join(copy["args"])
    certs_mount = _mount_of(copy, "certs")
    assert _mount_of(_container("tls-bridge"), "certs") == certs_mount
    certs_volume = next(v for v in _pod()["spec"]["volumes"] if v["name"] == "certs")
    assert certs_volume["emptyDir"]["medium"] == "Memory"
    upstream = config["upstream"][0]
    notify = next(l for l in config["listener"] if l["name"] == "notify")
    for key in (upstream["client_key"], notify["key"]):
        assert key.startswith(certs_mount + "/") and re.search(rf"install -m 0600 \S+ {re.escape(key)}", script), key
    for cert in (upstream["client_cert"], notify["cert"]):
        assert re.search(rf"install -m 0644 \S+ {re.escape(cert)}", script), cert
    secrets = {v["secret"]["secretName"] for v in _pod()["spec"]["volumes"] if "secret" in v}
    assert secrets == {d["metadata"]["name"] for d in _documents() if d["kind"] == "Secret"}


def test_memory_limit_covers_max_sessions_at_the_measured_cost():
    """~23 MiB at rest, ~28 KiB per idle session (README, Performance), at most 2 x buffer_size buffered."""
    limits = _config()["limits"]
    buffer_kib = int(re.fullmatch(r"(\d+)KiB", limits["buffer_size"]).group(1))
    needed_mib = 23 + limits["max_sessions"] * (2 * buffer_kib + 28) / 1024
    memory = _container("tls-bridge")["resources"]["limits"]["memory"]
    assert memory.endswith("Mi") and int(memory[:-2]) >= needed_mib, f"{memory} < {needed_mib:.0f} MiB"


def test_the_shipped_config_passes_check(bridge_bin, pki, inbound_pki, tmp_path):
    """Only the certificate paths change (to test certificates, keys at 0600); everything else is as shipped."""
    text = _config_text()
    replacements = {
        "/run/tls-bridge/certs/merchant.pem": pki.client_cert,
        "/run/tls-bridge/certs/merchant.key": pki.client_key,
        "/run/tls-bridge/certs/public.pem": inbound_pki.public_cert,
        "/run/tls-bridge/certs/public.key": inbound_pki.public_key,
    }
    for path, source in replacements.items():
        assert f'"{path}"' in text, path
        copy = tmp_path / Path(path).name
        shutil.copy(source, copy)
        copy.chmod(0o600)
        text = text.replace(f'"{path}"', f'"{copy}"')
    config = tmp_path / "tls-bridge.toml"
    config.write_text(text)
    result = run_cli(bridge_bin, "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "notify" in result.stdout and "paygent-sandbox" in result.stdout


# --- Kubernetes' own schemas (kubernetes-validate from PyPI, offline) -----------------------------------------

KUBERNETES_VERSION = "1.29.0"  # the oldest with native sidecars (initContainers[].restartPolicy)
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-packaging.txt"


def _venv_tool(name: str) -> str:
    venv = REPO / ".build-tools" / "packaging-venv"
    binary = venv / "bin" / name
    if not binary.exists():
        try:
            if not (venv / "bin" / "pip").exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True,
                           capture_output=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            output = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"{name} could not be installed from PyPI ({REQUIREMENTS.name}): "
                        f"{exc}: {output.decode(errors='replace')[-300:]}")
    return str(binary)


def _validate(*paths: Path, version: str = KUBERNETES_VERSION) -> subprocess.CompletedProcess:
    return subprocess.run([_venv_tool("kubernetes-validate"), "--strict", "-k", version, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_manifests_pass_kubernetes_schemas_strictly():
    result = _validate(*sorted(K8S.glob("*.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed ") == len(_documents()), result.stdout


def test_kubernetes_validate_would_catch_a_mistake(tmp_path):
    """The clean run above means something: a misspelt field fails, and so does a native sidecar on a
    cluster too old for it."""
    bad = tmp_path / "deployment.yaml"
    bad.write_text((K8S / "deployment.yaml").read_text().replace("readOnlyRootFilesystem: true",
                                                                  "readOnlyRootFileSystem: true", 1))
    result = _validate(bad)
    assert result.returncode != 0 and "readOnlyRootFileSystem" in result.stdout + result.stderr
    old = _validate(K8S / "deployment.yaml", version="1.27.0")
    assert old.returncode != 0 and "restartPolicy" in old.stdout + old.stderr


# --- checkov's Kubernetes policies (PyPI; offline with --skip-download) --------------------------------------

def _checkov(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_venv_tool("checkov"), "-d", str(directory), "--framework", "kubernetes", "--compact",
                           "--quiet", "--skip-download"], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "HOME": str(directory)})


def test_checkov_finds_nothing_but_the_two_justified_skips(tmp_path):
    result = _checkov(K8S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Failed checks: 0, Skipped checks: 2", result.stdout), result.stdout
    annotations = _one("Deployment")["metadata"]["annotations"]
    skips = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in annotations.items() if k.startswith("checkov.io/skip")}
    assert set(skips) == {"CKV_K8S_43", "CKV_K8S_15"} and all(len(reason) > 20 for reason in skips.values())


def test_checkov_would_catch_a_mistake(tmp_path):
    """The same manifests with the bridge allowed to escalate privileges fail."""
    for path in K8S.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("allowPrivilegeEscalation: false",
                                                         "allowPrivilegeEscalation: true", 1))
    result = _checkov(tmp_path)
    assert result.returncode != 0 and "CKV_K8S_20" in result.stdout, result.stdout
