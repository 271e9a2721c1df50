

# --- Kubernetes' own schemas (kubernetes-validate from PyPI, offline) -----------------------------------------

KUBERNETES_VERSION = "1.29.0"  # the oldest with native sidecars (initContainers[].restartPolicy)
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-packaging.txt"


def _kubernetes_validate() -> str:
    venv = REPO / ".build-tools" / "packaging-venv"
    binary = venv / "bin" / "kubernetes-validate"
    if not binary.exists():
        import subprocess
        import sys
        try:
            if not (venv / "bin" / "pip").exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True,
                           capture_output=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            output = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"kubernetes-validate could not be installed from PyPI ({REQUIREMENTS.name}): "
                        f"{exc}: {output.decode(errors='replace')[-300:]}")
    return str(binary)


def _validate(*paths: Path):
    import subprocess
    return subprocess.run([_kubernetes_validate(), "--strict", "-k", KUBERNETES_VERSION, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_manifests_pass_kubernetes_schemas_strictly():
    result = _validate(*sorted(K8S.glob("*.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 5, result.stdout


def test_kubernetes_validate_would_catch_a_mistake(tmp_path):
    """The clean run above means something: a misspelt field and a native sidecar on a cluster too old fail."""
    text = (K8S / "deployment.yaml").read_text()
    bad = tmp_path / "deployment.yaml"
    bad.write_text(text.replace("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1))
    result = _validate(bad)
    assert result.returncode != 0 and "readOnlyRootFileSystem" in result.stdout + result.stderr
    import subprocess
    old = subprocess.run([_kubernetes_validate(), "--strict", "-k", "1.27.0", str(K8S / "deployment.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert old.returncode != 0 and "restartPolicy" in old.stdout + old.stderr
