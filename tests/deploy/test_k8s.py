"""deploy/k8s cross-checked with the app and with itself.

Schemas are kubernetes-validate's and the build is kustomize's (test_tools.py); what no tool
knows is checked here: probes at real routes and ports, commands the CLI accepts, topics of
core.names, selectors that select pods, network policies that let the system work.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from riverwatch.core.settings import Settings
from tests.deploy.files import (
    K8S,
    SECRET_TEMPLATE,
    build_settings,
    cli_commands,
    configmap_data,
    container_ports,
    default_api_port,
    dockerfile_env,
    expected_topics,
    final_stage,
    k8s,
    k8s_env,
    k8s_objects,
    pod_templates,
    project,
    riverwatch_containers,
    secret_template,
    serves_get,
    setting_env_names,
    topic_specs,
)


def image_user() -> int:
    """The numeric uid of the image's USER."""
    return int(final_stage("USER")[-1][0].split(":")[0])


@pytest.mark.parametrize("workload", sorted({w for w, _, _ in riverwatch_containers()}))
def test_k8s_settings_validate(monkeypatch: pytest.MonkeyPatch, workload: str) -> None:
    """Image ENV + ConfigMap + Secret template + env build valid production Settings."""
    for name, _, container in riverwatch_containers():
        if name == workload:
            s = build_settings(monkeypatch, dockerfile_env() | k8s_env(container))
            assert s.env == "production"


def test_k8s_deployments_have_requests_limits_probes_and_run_as_non_root() -> None:
    """Resources on every container, probes on every Deployment, no root, no service links."""
    for workload, _, pod in pod_templates():
        # Service links would inject e.g. RIVERWATCH_API_PORT=tcp://... for the Service
        # riverwatch-api, which Settings refuses.
        assert pod.get("enableServiceLinks") is False, workload
        assert pod["securityContext"]["runAsNonRoot"] is True, workload
        assert pod["securityContext"]["runAsUser"] != 0, workload
        for c in pod["containers"]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (workload, kind)
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, workload
    for workload, pod, _ in riverwatch_containers():
        assert pod["securityContext"]["runAsUser"] == image_user(), f"{workload}: the image's USER"
    for obj in k8s("Deployment"):
        for c in obj["spec"]["template"]["spec"]["containers"]:
            assert c.get("livenessProbe") and c.get("readinessProbe"), obj["metadata"]["name"]


def test_k8s_api_probes_ports_and_host_match_the_app() -> None:
    """Liveness on /healthz, readiness on /readyz, on the port the API binds, at real routes."""
    apis = [(w, c) for w, _, c in riverwatch_containers() if c["args"][0] == "api"]
    assert apis
    deployments = {d["metadata"]["name"]: d for d in k8s("Deployment")}
    for workload, c in apis:
        env = dockerfile_env() | k8s_env(c)
        port = int(env.get("RIVERWATCH_API_PORT", default_api_port()))
        assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"
        ports = container_ports(c)
        assert port in ports.values()
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path and serves_get(path), (workload, probe)
            assert ports[get["port"]] == port, (workload, probe)
        if "startupProbe" in c:
            assert serves_get(c["startupProbe"]["httpGet"]["path"])
        annotations = deployments[workload]["spec"]["template"]["metadata"]["annotations"]
        assert serves_get(annotations["prometheus.io/path"])
        assert int(annotations["prometheus.io/port"]) == port


def selected(labels_selector: dict[str, Any]) -> list[str]:
    """Workloads whose pod labels a label selector (matchLabels and matchExpressions) selects."""

    def matches(labels: dict[str, str]) -> bool:
        if not labels_selector.get("matchLabels", {}).items() <= labels.items():
            return False
        for expr in labels_selector.get("matchExpressions", []):
            present = expr["key"] in labels
            value = labels.get(expr["key"])
            ok = {
                "In": present and value in expr.get("values", []),
                "NotIn": not present or value not in expr.get("values", []),
                "Exists": present,
                "DoesNotExist": not present,
            }[expr["operator"]]
            if not ok:
                return False
        return True

    return [name for name, labels, _ in pod_templates() if matches(labels)]


def test_k8s_services_and_pdb_select_real_pods() -> None:
    """Service and PDB selectors match a Deployment's pods; Service ports reach a container."""
    pods = {name: pod for name, _, pod in pod_templates()}
    for d in k8s("Deployment"):
        assert d["spec"]["selector"]["matchLabels"].items() <= (
            d["spec"]["template"]["metadata"]["labels"].items()
        )
    services = k8s("Service")
    assert services
    for svc in services:
        (target,) = selected({"matchLabels": svc["spec"]["selector"]})
        ports = container_ports(pods[target]["containers"][0])
        for p in svc["spec"]["ports"]:
            assert p.get("targetPort", p["port"]) in ports, svc["metadata"]["name"]
    (pdb,) = k8s("PodDisruptionBudget")
    (target,) = selected(pdb["spec"]["selector"])
    assert pods[target]["containers"][0]["args"][:3] == ["worker", "--roles", "scoring,learning"]


def test_k8s_commands_are_cli_commands() -> None:
    """Every riverwatch container runs a real `riverwatch` subcommand."""
    commands = cli_commands()
    roles = set()
    for workload, _, c in riverwatch_containers():
        assert "command" not in c, f"{workload}: keep the image's ENTRYPOINT (riverwatch)"
        command, *args = c["args"]
        assert command in commands, f"{workload}: no `riverwatch {command}`"
        assert all(a.split("=")[0] in commands[command] for a in args if a.startswith("--"))
        roles.add(command)
    assert {"api", "worker"} <= roles


def test_k8s_topics_job_creates_the_topics_the_app_uses() -> None:
    """The topics Job creates every topic of core.names with the configured partitions."""
    (job,) = k8s("Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    env = k8s_env(c)
    partitions = int(env.get("RIVERWATCH_PARTITIONS", Settings.model_fields["partitions"].default))
    script = "\n".join(c["args"])
    assert topic_specs(script) == expected_topics(partitions)
    assert '"${RIVERWATCH_KAFKA_BOOTSTRAP}"' in script and "--if-not-exists" in script


def test_k8s_secret_template_holds_only_placeholders() -> None:
    """The Secret template is a template: readable placeholders, no base64, not applied."""
    secret = secret_template()
    assert "data" not in secret, "use stringData with placeholders (base64 hides real values)"
    assert secret["stringData"]
    for key, value in secret["stringData"].items():
        assert key in setting_env_names(), key
        assert "CHANGE_ME" in value, f"{key} looks like a real value: mark it CHANGE_ME"
    assert "RIVERWATCH_REDIS_URL" in secret["stringData"]
    assert "RIVERWATCH_REDIS_URL" not in configmap_data(), "a Redis URL may carry a password"


def test_k8s_kustomization_lists_the_manifests() -> None:
    """kustomization.yaml applies every manifest but the Secret template; image tag = version."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    with_objects = {
        name
        for name, objs in k8s_objects().items()
        if objs and name not in {"kustomization.yaml", SECRET_TEMPLATE.name}
    }
    assert set(kustomization["resources"]) == with_objects
    assert "namespace" not in kustomization, "keep the base namespace-agnostic"
    for objs in k8s_objects().values():
        for obj in objs:
            assert "namespace" not in obj.get("metadata", {}), obj["metadata"]
    (image,) = kustomization["images"]
    assert image["newTag"] == project()["project"]["version"]
    for _, _, pod in pod_templates():
        for c in pod["containers"]:
            assert c["image"] == image["name"] or re.fullmatch(r"[\w./-]+:[\w.-]+", c["image"])
            assert not c["image"].endswith(":latest"), c["image"]


# --- network policies -----------------------------------------------------------------------------


def policies_for(workload: str, direction: str) -> list[dict[str, Any]]:
    """The ingress or egress rules of every NetworkPolicy selecting ``workload``'s pods."""
    out = []
    for policy in k8s("NetworkPolicy"):
        spec = policy["spec"]
        if direction in spec["policyTypes"] and workload in selected(spec["podSelector"]):
            out.extend(spec.get(direction.lower(), []))
    return out


def allows_port(rules: list[dict[str, Any]], port: int | str, protocol: str = "TCP") -> bool:
    """True when a rule lets ``port`` through (a rule without ports allows every port)."""
    for rule in rules:
        ports = rule.get("ports")
        if not ports or any(
            p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
        ):
            return True
    return False


def test_network_policies_deny_by_default_and_select_real_pods() -> None:
    """A default deny (both directions) covers every pod; every policy selects some pod."""
    policies = k8s("NetworkPolicy")
    workloads = {name for name, _, _ in pod_templates()}
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert any(
        set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and set(selected(p["spec"]["podSelector"])) == workloads
        for p in deny
    ), "no default-deny policy over every riverwatch pod"
    for policy in policies:
        assert selected(policy["spec"]["podSelector"]), policy["metadata"]["name"]


def test_network_policies_let_the_system_work() -> None:
    """The API takes traffic on its port, Prometheus reaches the workers' metrics, and every
    pod reaches DNS, Kafka and Redis on the ports the config names."""
    bootstrap_port = int(configmap_data()["RIVERWATCH_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    redis_port = int(
        re.search(r":(\d+)/", secret_template()["stringData"]["RIVERWATCH_REDIS_URL"]).group(1)  # type: ignore[union-attr]
    )
    for workload, _, pod in pod_templates():
        egress = policies_for(workload, "Egress")
        for port, protocol in ((53, "UDP"), (53, "TCP")):
            assert allows_port(egress, port, protocol), (workload, "DNS", protocol)
        assert allows_port(egress, bootstrap_port), (workload, "Kafka")
        if workload != "riverwatch-topics":
            assert allows_port(egress, redis_port), (workload, "Redis")
        ingress = policies_for(workload, "Ingress")
        for c in pod["containers"]:
            for name, number in container_ports(c).items():
                if isinstance(name, str):
                    assert allows_port(ingress, name) or allows_port(ingress, number), (
                        workload,
                        name,
                    )


def test_only_the_helper_reaches_webhook_receivers() -> None:
    """HTTPS out to public addresses is the helper's (alerts role) alone; private ranges are
    excluded there."""
    for workload, _, pod in pod_templates():
        egress = policies_for(workload, "Egress")
        args = pod["containers"][0].get("args", [])
        is_helper = "--roles" in args and "alerts" in args[args.index("--roles") + 1].split(",")
        assert allows_port(egress, 443) is is_helper, workload
    (webhooks,) = [p for p in k8s("NetworkPolicy") if allows_port(p["spec"].get("egress", []), 443)]
    blocks = [to["ipBlock"] for rule in webhooks["spec"]["egress"] for to in rule["to"]]
    v4 = next(b for b in blocks if b["cidr"] == "0.0.0.0/0")
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(v4["except"])


def test_k8s_workers_serve_metrics_where_prometheus_scrapes() -> None:
    """Every worker Deployment sets a metrics port, binds it where Prometheus can reach it, and
    announces it in its scrape annotations."""
    deployments = {d["metadata"]["name"]: d for d in k8s("Deployment")}
    workers = [(w, c) for w, _, c in riverwatch_containers() if c["args"][0] == "worker"]
    assert len(workers) == 2
    for workload, c in workers:
        env = dockerfile_env() | k8s_env(c)
        port = int(env["RIVERWATCH_WORKER_METRICS_PORT"])
        assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"
        assert port in container_ports(c).values(), workload
        annotations = deployments[workload]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port


def run_topics_job(tmp_path: Path, **env: str) -> tuple[list[list[str]], str]:
    """Run the topics Job's script with sh, kafka-topics.sh replaced by a stub that records its
    arguments and the --command-config file it was given; return (calls, that file)."""
    (job,) = k8s("Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" >> "$CALLS"; echo --- >> "$CALLS"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --command-config ] && cp "$2" "$SEEN"; shift; done\n'
    )
    stub.chmod(0o755)
    script = "\n".join(c["args"]).replace("/tmp/", f"{tmp_path}/")
    script = script.replace("/opt/kafka/bin/kafka-topics.sh", str(stub))
    calls, seen = tmp_path / "calls", tmp_path / "seen"
    base = {"PATH": os.environ["PATH"], "CALLS": str(calls), "SEEN": str(seen)}
    base |= {"RIVERWATCH_KAFKA_BOOTSTRAP": "kafka:9093", "RIVERWATCH_TOPIC_PREFIX": "rw-"}
    base |= {"TOPIC_REPLICATION_FACTOR": "3"}
    subprocess.run(["sh", "-c", script], env=base | env, check=True, timeout=30)
    runs = [r.strip().splitlines() for r in calls.read_text().split("---") if r.strip()]
    return runs, seen.read_text()


def test_k8s_topics_job_speaks_the_brokers_security_protocol(tmp_path: Path) -> None:
    """The Job's Java client gets the app's Kafka security settings (SASL_SSL with SCRAM and the
    CA, a client certificate) through --command-config; PLAINTEXT gives an empty file."""
    runs, props = run_topics_job(tmp_path)
    assert len(runs) == 8 and all("--command-config" in r for r in runs)
    assert props == ""
    ca, cert, key = (tmp_path / n for n in ("ca.crt", "tls.crt", "tls.key"))
    for f, text in ((ca, "CA"), (cert, "CERT\n"), (key, "KEY\n")):
        f.write_text(text)
    runs, props = run_topics_job(
        tmp_path,
        RIVERWATCH_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        RIVERWATCH_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        RIVERWATCH_KAFKA_SASL_USERNAME="rw",
        RIVERWATCH_KAFKA_SASL_PASSWORD="s3cret",
        RIVERWATCH_KAFKA_SSL_CA_FILE=str(ca),
        RIVERWATCH_KAFKA_SSL_CERT_FILE=str(cert),
        RIVERWATCH_KAFKA_SSL_KEY_FILE=str(key),
    )
    lines = props.splitlines()
    assert "security.protocol=SASL_SSL" in lines
    assert f"ssl.truststore.location={ca}" in lines and "ssl.truststore.type=PEM" in lines
    assert "ssl.keystore.type=PEM" in lines
    assert (tmp_path / "client.pem").read_text() == "KEY\nCERT\n"
    assert "sasl.mechanism=SCRAM-SHA-512" in lines
    assert (
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="rw" password="s3cret";'
    ) in lines
    (job,) = k8s("Job")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    for name in ("RIVERWATCH_KAFKA_SASL_USERNAME", "RIVERWATCH_KAFKA_SASL_PASSWORD"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret_template()["metadata"]["name"] and ref["optional"] is True
