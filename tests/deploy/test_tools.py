"""The ecosystem's own tools on deploy/: promtool, kubernetes-validate, kustomize (kubectl),
shellcheck, hadolint and check-jsonschema (the compose spec).

They run for real, offline: the Python ones are dev dependencies in .venv, promtool (Debian's
prometheus package) and shellcheck come from `make deploy-tools`, which `make test` runs. A
missing tool fails, never skips. Each tool is also shown a seeded defect it must refuse, so a
check here cannot pass because the tool accepts anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.files import (
    COMPOSE,
    DOCKERFILE,
    K8S,
    PROMETHEUS,
    ROOT,
    compose_services,
    k8s,
    rules,
)

VENV_BIN = Path(sys.executable).parent
# The oldest Kubernetes release still served by the big clouds, and kubernetes-validate's newest.
K8S_VERSIONS = ("1.30", "1.37")


def tool(name: str) -> str:
    """The path of a tool: .venv's first, then PATH; a missing one fails the test."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make deploy-tools` (or `make install`)")
    return found


def run(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root; its output is kept for the failure message."""
    return subprocess.run(
        [tool(name), *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120
    )


def ok(done: subprocess.CompletedProcess[str]) -> bool:
    """True on exit 0; prints the tool's output so that a failure shows it."""
    print(done.stdout, done.stderr)
    return done.returncode == 0


# --- Prometheus -----------------------------------------------------------------------------------


def test_promtool_check_config() -> None:
    """prometheus.yml is a valid config (its rule files are mounted elsewhere: syntax only)."""
    assert ok(
        run("promtool", "check", "config", "--syntax-only", "deploy/prometheus/prometheus.yml")
    )


def test_promtool_check_rules() -> None:
    """rules.yml: valid PromQL, valid templates, no duplicate rules."""
    assert ok(run("promtool", "check", "rules", "--lint=all", "deploy/prometheus/rules.yml"))


def test_promtool_test_rules() -> None:
    """The alert rules' unit tests (rules.test.yml) pass."""
    assert ok(run("promtool", "test", "rules", "deploy/prometheus/rules.test.yml"))


def test_every_alert_has_a_unit_test() -> None:
    """promtool does not require coverage: every alert of rules.yml is tested firing."""
    tests = yaml.safe_load((PROMETHEUS / "rules.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts and alerts <= fired, f"no firing test for {sorted(alerts - fired)}"


# --- Kubernetes -----------------------------------------------------------------------------------


def manifests() -> list[str]:
    """The manifest files (kustomization.yaml is kustomize's, not a Kubernetes object)."""
    return sorted(
        str(p.relative_to(ROOT)) for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    """Every manifest, the Secret template included, against the API schemas (strict: no
    unknown fields), offline."""
    assert ok(run("kubernetes-validate", "--strict", "--quiet", "-k", version, *manifests()))


def test_kustomize_builds_and_the_build_validates(tmp_path: Path) -> None:
    """`kubectl kustomize deploy/k8s` builds, and what it builds validates too."""
    done = run("kubectl", "kustomize", "deploy/k8s")
    assert ok(done)
    built = list(yaml.safe_load_all(done.stdout))
    (tmp_path / "built.yaml").write_text(done.stdout)
    assert ok(run("kubernetes-validate", "--strict", "--quiet", str(tmp_path / "built.yaml")))
    names = {(o["kind"], o["metadata"]["name"]) for o in built}
    expected = {
        (o["kind"], o["metadata"]["name"])
        for kind in ("Deployment", "Job", "Service", "NetworkPolicy", "ConfigMap")
        for o in k8s(kind)
    }
    assert expected <= names, f"not in the build: {expected - names}"
    assert ("Secret", "riverwatch-secrets") not in names, "the Secret template is not applied"
    images = {
        c["image"]
        for o in built
        if o["kind"] in ("Deployment", "Job")
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert any(image.startswith("riverwatch:") for image in images), images


# --- shell ----------------------------------------------------------------------------------------


def shell_scripts() -> dict[str, tuple[str, str]]:
    """where -> (shell, script) for every shell script: compose entrypoints and CMD-SHELL
    healthchecks (interpolated, as the container gets them), k8s `sh -c` containers, .ci/run.

    The health checks of riverwatch containers are `riverwatch healthcheck` (test_image.py).
    """
    scripts = {}
    for name, svc in compose_services().items():
        entrypoint = svc.get("entrypoint") or []
        if entrypoint[-1:] == ["-c"] and entrypoint[0].endswith("sh"):
            scripts[f"compose {name} command"] = ("sh", svc["command"][0])
        test = svc.get("healthcheck", {}).get("test", [])
        if test[:1] == ["CMD-SHELL"]:
            scripts[f"compose {name} healthcheck"] = ("sh", test[1])
    for obj in [*k8s("Deployment"), *k8s("Job")]:
        for c in obj["spec"]["template"]["spec"]["containers"]:
            if c.get("command", [])[-1:] == ["-c"] and c["command"][0].endswith("sh"):
                scripts[f"k8s {obj['metadata']['name']}"] = ("sh", c["args"][0])
    ci = ROOT / ".ci" / "run"
    if ci.is_file():
        scripts[".ci/run"] = ("bash", ci.read_text())
    return scripts


def test_there_are_shell_scripts() -> None:
    """Guard: the extraction finds the topic scripts and the Kafka healthcheck."""
    found = shell_scripts()
    assert {"compose kafka-init command", "compose kafka healthcheck", "k8s riverwatch-topics"} <= (
        found.keys()
    )


@pytest.mark.parametrize("where", sorted(shell_scripts()))
def test_shellcheck(where: str) -> None:
    """shellcheck finds nothing, style notes included."""
    shell, script = shell_scripts()[where]
    assert ok(
        run("shellcheck", "--norc", f"--shell={shell}", "--severity=style", "-", stdin=script)
    )


# --- Dockerfile and compose -----------------------------------------------------------------------


def test_hadolint() -> None:
    """hadolint (with the ShellCheck of its RUN lines) finds nothing in deploy/Dockerfile."""
    assert ok(run("hadolint", "--no-color", str(DOCKERFILE.relative_to(ROOT))))


def test_compose_matches_the_compose_spec() -> None:
    """docker-compose.yml against the Compose Specification's JSON schema (shipped by
    check-jsonschema; no compose engine runs here)."""
    assert ok(run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)))


# --- each tool refuses a seeded defect ------------------------------------------------------------

BROKEN = {
    "rules": ("r.yml", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n"),
    "config": ("p.yml", "global:\n  scrape_interval: often\n"),
    "rules-test": ("t.yml", None),
    "manifest": (
        "d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
        "spec: {replicas: two, selector: {}, template: {}}\n",
    ),
    "kustomize": ("kustomization.yaml", "resources: [missing.yaml]\n"),
    "shell": ("s.sh", "#!/bin/sh\nrm -rf $1/*\n"),
    "dockerfile": ("Dockerfile", "FROM python\nRUN pip install requests\n"),
    "compose": ("compose.yml", "services:\n  a:\n    image: x\n    restart: 5\n    bogus: 1\n"),
}


def _seeded_rules_test(tmp_path: Path) -> Path:
    """rules.yml with a test that expects RiverwatchApiDown while the API is up."""
    shutil.copy(PROMETHEUS / "rules.yml", tmp_path / "rules.yml")
    test = {
        "rule_files": ["rules.yml"],
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": 'up{job="riverwatch-api"}', "values": "1x10"}],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "RiverwatchApiDown",
                        "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "t.yml"
    path.write_text(yaml.safe_dump(test))
    return path


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_each_tool_refuses_a_seeded_defect(tmp_path: Path, defect: str) -> None:
    """The tools above are real checks: each fails on a file with a known defect."""
    name, text = BROKEN[defect]
    path = tmp_path / name
    if text is None:
        path = _seeded_rules_test(tmp_path)
    else:
        path.write_text(text)
    command = {
        "rules": ("promtool", "check", "rules", str(path)),
        "config": ("promtool", "check", "config", "--syntax-only", str(path)),
        "rules-test": ("promtool", "test", "rules", str(path)),
        "manifest": ("kubernetes-validate", "--strict", "--quiet", str(path)),
        "kustomize": ("kubectl", "kustomize", str(tmp_path)),
        "shell": ("shellcheck", "--norc", str(path)),
        "dockerfile": ("hadolint", "--no-color", str(path)),
        "compose": ("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)),
    }[defect]
    assert not ok(run(*command))
