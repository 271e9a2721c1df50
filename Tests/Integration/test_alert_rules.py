"""deploy/prometheus/: the alert rules pass `promtool check rules`, their unit tests pass `promtool test rules`,
and neither can drift from the code: every metric, label and label value the rules select on, and the shape
of every series their unit tests feed in, is checked against the /metrics of a running bridge.

promtool comes from Debian's `prometheus` package (scripts/setup --test installs it); without it these tests
fail rather than skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timezone
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from support.bridge import free_port, recv_exact
from support.legacy import tls_listener

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "deploy" / "prometheus"
RULES = RULES_DIR / "tls-bridge-alerts.yml"
RULE_TESTS = RULES_DIR / "tls-bridge-alerts.test.yml"
SCRAPE_LABELS = {"job", "instance"}  # added by Prometheus when it scrapes, not by the bridge

# a bridge metric, not a recording rule's name (level:metric:operations)
METRIC = re.compile(r"(?<![:\w])(tls_bridge_[a-z0-9_]+)(?![:\w])(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
BY_CLAUSE = re.compile(r"\bby\s*\(([^)]*)\)")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: scripts/setup --test installs it (Debian package prometheus)",
                    pytrace=False)
    return path


def rule_exprs() -> list[tuple[str, str]]:
    """(alert or record name, expr) of every rule."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule.get("alert") or rule["record"], rule["expr"]) for group in groups for rule in group["rules"]]


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Each bridge metric `expr` selects, with its label matchers (name, operator, value as a regex/text)."""
    found = []
    for match in METRIC.finditer(expr):
        matchers = [(name, op, value.replace("\\\\", "\\").replace('\\"', '"'))
                    for name, op, value in MATCHER.findall(match.group(2) or "")]
        found.append((match.group(1), matchers))
    return found


def test_the_rules_pass_promtool_check_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_the_rules_pass_their_promtool_unit_tests():
    """Each alert fires when it should, with its labels and rendered annotations, and the series that must
    raise nothing (a certificate 30 days off, one closed handshake, 50% of max_sessions, a source that speaks
    only TLS 1.2+) do not."""
    result = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULES_DIR, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout, result.stdout


def test_every_alert_has_a_severity_and_a_summary():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert len(alerts) >= 9, alerts
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule


# --- against a running bridge ---------------------------------------------------------------------------------

def scrape(port: int) -> str:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as response:
        assert response.status == 200
        return response.read().decode()


def samples_by_metric(text: str) -> dict[str, list]:
    """Metric name (as written in a query: counters with _total) → its samples."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


@pytest.fixture
def live_metrics(upstream, bridge, pki, legacy_pki):
    """A running bridge's /metrics before and after what makes every series the rules use appear: an upstream
    with the merchant's client certificate (kind="client"), a TLS listener with its certificate
    (kind="listener"), a deep health check and one session (the gateway's certificate as verified,
    kind="upstream"; the session's source)."""
    import urllib.request

    gateway = upstream(client_auth="required")
    port = free_port()
    b = bridge(gateway.address, start=False,
               upstream={"client_cert": str(pki.client_cert), "client_key": str(pki.client_key)})
    b.config["admin"] = {"listen": f"127.0.0.1:{port}"}
    b.config["listener"].append(dict(tls_listener(legacy_pki, upstream="gw"), listen=f"127.0.0.1:{free_port()}"))
    b.start()
    before = scrape(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?deep=1", timeout=15) as response:
        assert response.status == 200
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        assert recv_exact(s, 4) == b"ping"
    b.wait_records(1)
    return before, scrape(port)


def test_the_gateways_certificate_expiry_appears_once_verified_and_is_its_not_after(live_metrics, pki):
    before, after = live_metrics
    assert 'kind="upstream"' not in before, "no gateway certificate is known before a handshake"
    expiry = [s for s in samples_by_metric(after)["tls_bridge_certificate_expiry_timestamp_seconds"]
              if s.labels["kind"] == "upstream"]
    assert [(s.labels["name"], s.labels["subject"]) for s in expiry] == [("gw", "O=Test Gateway,CN=gateway.test")], expiry
    # naive UTC in Debian 12's cryptography
    not_after = x509.load_pem_x509_certificate(pki.server_cert.read_bytes()).not_valid_after.replace(
        tzinfo=timezone.utc).timestamp()
    assert abs(expiry[0].value - not_after) <= 5, (expiry[0].value, not_after)
    client = [s for s in samples_by_metric(after)["tls_bridge_certificate_expiry_timestamp_seconds"]
              if s.labels["kind"] == "client"]
    assert [s.labels["name"] for s in client] == ["gw"], client
    # a listener with one certificate and no routes (like a notification listener) is named by itself
    listener = [s for s in samples_by_metric(before)["tls_bridge_certificate_expiry_timestamp_seconds"]
                if s.labels["kind"] == "listener"]
    assert [s.labels["name"] for s in listener] == ["legacy"], listener


def test_every_metric_label_and_value_the_rules_select_exists_in_a_running_bridges_metrics(live_metrics):
    _, text = live_metrics
    samples = samples_by_metric(text)
    exprs = rule_exprs()
    recorded = {name for name, _ in exprs if ":" in name}
    for name, expr in exprs:
        used = selectors(expr)
        if not used:  # an alert on a recording rule of this file, checked as that rule
            assert any(record in expr for record in recorded), f"{name}: no tls_bridge_ metric in {expr}"
            continue
        for metric, matchers in used:
            assert metric in samples, f"{name}: {metric} is not in /metrics:\n{text}"
            series = samples[metric]
            for label, op, value in matchers:
                assert any(label in s.labels for s in series), f"{name}: {metric} has no label {label}"
                if op == "=":
                    assert any(s.labels.get(label) == value for s in series), \
                        f"{name}: no {metric}{{{label}=\"{value}\"}} in /metrics"
                elif op == "=~":
                    assert any(re.fullmatch(value, s.labels.get(label, "")) for s in series), \
                        f"{name}: no {metric} whose {label} matches {value!r}"
        # what the alert aggregates by must be labels of the metrics it aggregates
        labels = {label for metric, _ in used for s in samples[metric] for label in s.labels}
        for clause in BY_CLAUSE.findall(expr):
            for label in (l.strip() for l in clause.split(",")):
                assert label in labels | SCRAPE_LABELS, f"{name}: by ({label}) is not a label of {sorted(labels)}"


def test_the_handshake_alerts_cover_every_failure_reason_the_bridge_exports_once(live_metrics):
    _, text = live_metrics
    exported = {s.labels["reason"] for s in samples_by_metric(text)["tls_bridge_upstream_handshake_failures_total"]}
    covered: list[str] = []
    for _, expr in rule_exprs():
        for metric, matchers in selectors(expr):
            if metric == "tls_bridge_upstream_handshake_failures_total":
                covered += [part for label, op, value in matchers if label == "reason" for part in value.split("|")]
    assert sorted(covered) == sorted(exported), f"rules: {sorted(covered)}, /metrics: {sorted(exported)}"


def test_the_unit_tests_input_series_have_the_labels_real_metrics_have(live_metrics):
    """Every input series of tls-bridge-alerts.test.yml names a metric the bridge exports, with exactly its
    labels (plus the scrape's job and instance)."""
    _, text = live_metrics
    samples = samples_by_metric(text)
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    seen = set()
    for case in tests:
        for item in case["input_series"]:
            match = re.fullmatch(r"(\w+)\{(.*)\}", item["series"])
            assert match, item
            metric, labels = match.group(1), {name for name, _, _ in MATCHER.findall(match.group(2))}
            assert metric in samples, f"{metric} (in {case['name']}) is not in /metrics"
            real = {label for s in samples[metric] for label in s.labels}
            assert labels == real | SCRAPE_LABELS, f"{metric}: the test has {sorted(labels)}, /metrics {sorted(real)}"
            seen.add(metric)
    used = {metric for _, expr in rule_exprs() for metric, _ in selectors(expr)}
    assert used <= seen, f"metrics the rules use but no unit test feeds: {sorted(used - seen)}"
