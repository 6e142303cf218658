"""docker-compose.yml and the Prometheus/Grafana files it mounts, cross-checked with the app.

The compose spec's schema is checked by check-jsonschema (test_tools.py); no compose engine
runs here, so what the file means (settings, commands, ports, topics, mounts, secrets) is read
with PyYAML and compose's interpolation (tests/deploy/files.py) and compared with the code.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from riverwatch.core.settings import Settings
from tests.deploy.files import (
    COMPOSE,
    COMPOSE_VAR,
    DOCKERFILE,
    GRAFANA,
    ONE_SHOT_JOBS,
    PROMETHEUS,
    REQUIRED_VALUE,
    ROOT,
    as_env,
    bind_mounts,
    build_settings,
    cli_commands,
    compose_services,
    container_port,
    default_api_port,
    dockerfile_env,
    expected_topics,
    interpolate_tree,
    prometheus_config,
    riverwatch_services,
    rule_expressions,
    serves_get,
    setting_env_names,
    topic_specs,
)

# --- settings -------------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\bRIVERWATCH_[A-Z0-9_]+\b")


def deploy_files() -> list[Path]:
    """The files that set RIVERWATCH_* variables."""
    return [COMPOSE, DOCKERFILE, *sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))]


@pytest.mark.parametrize("path", deploy_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_riverwatch_variable_is_a_setting(path: Path) -> None:
    """A misspelt or removed setting in a deploy file would be silently ignored at run time."""
    unknown = set(_ENV_REF.findall(path.read_text())) - setting_env_names()
    assert not unknown, f"{path.name} names variables that are no field of Settings: {unknown}"


def test_deploy_files_reference_settings_at_all() -> None:
    """Guard against the check above passing because the regex found nothing."""
    found = {v for p in deploy_files() for v in _ENV_REF.findall(p.read_text())}
    assert {"RIVERWATCH_KAFKA_BOOTSTRAP", "RIVERWATCH_REDIS_URL", "RIVERWATCH_ENV"} <= found


@pytest.mark.parametrize("service", sorted(riverwatch_services()))
def test_compose_settings_validate(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    """Image ENV + the service's environment build valid production Settings."""
    env = dockerfile_env() | as_env(riverwatch_services()[service].get("environment"))
    s = build_settings(monkeypatch, env)
    assert s.env == "production"
    assert s.kafka_bootstrap and s.redis_url


def test_compose_requires_its_secrets() -> None:
    """Passwords come from ``${VAR:?message}``: compose refuses to start without them."""
    text = COMPOSE.read_text()
    secret_keys = re.findall(
        r"^\s*([A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|AUTH)[A-Z0-9_]*):\s*(.*)$", text, re.M
    )
    assert len(secret_keys) >= 2, "expected the Grafana admin password and REDISCLI_AUTH"
    for key, value in secret_keys:
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?.+\}", value.strip()), f"{key} must be ${{X:?...}}"
    raw = yaml.safe_load(text)
    for missing in ("GRAFANA_ADMIN_PASSWORD", "REDIS_PASSWORD"):
        env = {m.group(1): "x" for m in COMPOSE_VAR.finditer(text) if m.group(1)}
        del env[missing]
        with pytest.raises(KeyError, match=missing):
            interpolate_tree(raw, env)


def test_compose_redis_requires_the_password_everyone_uses() -> None:
    """Redis runs with requirepass; its healthcheck and every riverwatch service use the same
    password (issue 13: Redis is a trust boundary)."""
    redis = compose_services()["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == REQUIRED_VALUE
    assert as_env(redis["environment"])["REDISCLI_AUTH"] == REQUIRED_VALUE
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for name, svc in riverwatch_services().items():
        url = as_env(svc.get("environment"))["RIVERWATCH_REDIS_URL"]
        assert url == f"redis://:{REQUIRED_VALUE}@redis:6379/0", name


# --- services, commands, ports --------------------------------------------------------------------


def test_compose_healthchecks_and_dependencies() -> None:
    """Healthchecks everywhere; depends_on waits for healthy (one-shot jobs: completed)."""
    services = compose_services()
    for name, svc in services.items():
        if name in ONE_SHOT_JOBS:
            assert svc.get("restart") == "no", f"{name} is a one-shot job"
            continue
        check = svc.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name}: no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = "service_completed_successfully" if dep in ONE_SHOT_JOBS else "service_healthy"
            assert isinstance(cond, dict) and cond.get("condition") == wanted, (name, dep, cond)


def test_compose_has_the_required_services() -> None:
    """Kafka (apache/kafka, KRaft), Redis 7, Prometheus, Grafana, api, worker, demo simulator."""
    services = compose_services()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert services["redis"]["image"].startswith("redis:7")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    commands = {name: svc["command"][0] for name, svc in riverwatch_services().items()}
    assert {"api", "worker", "simulate"} <= set(commands.values())
    (simulator,) = [n for n, c in commands.items() if c == "simulate"]
    assert services[simulator]["profiles"] == ["demo"]
    assert services[simulator]["command"][1:3] == ["--sink", "kafka"]
    for svc in riverwatch_services().values():
        assert svc["build"]["dockerfile"] == str(DOCKERFILE.relative_to(ROOT))


def test_compose_commands_are_cli_commands() -> None:
    """Each riverwatch service runs a `riverwatch` subcommand with options it accepts."""
    commands = cli_commands()
    for name, svc in riverwatch_services().items():
        command, *args = svc["command"]
        assert command in commands, f"{name}: no `riverwatch {command}`"
        for arg in args:
            if arg.startswith("--"):
                assert arg.split("=")[0] in commands[command], f"{name}: {command} {arg}"


def compose_api_port() -> int:
    """The port the compose api service binds."""
    (api,) = [s for s in riverwatch_services().values() if s["command"][0] == "api"]
    env = dockerfile_env() | as_env(api.get("environment"))
    return int(env.get("RIVERWATCH_API_PORT", default_api_port()))


def test_compose_api_port_host_and_healthcheck_match_the_app() -> None:
    """The API binds 0.0.0.0 on the port compose publishes and checks, at a real route."""
    (api,) = [s for s in riverwatch_services().values() if s["command"][0] == "api"]
    env = dockerfile_env() | as_env(api.get("environment"))
    assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"
    port = compose_api_port()
    assert port in {container_port(p) for p in api["ports"]}
    # `riverwatch healthcheck api` asks 127.0.0.1:$RIVERWATCH_API_PORT/healthz
    assert api["healthcheck"]["test"] == ["CMD", "riverwatch", "healthcheck", "api"]
    assert int(env["RIVERWATCH_API_PORT"]) == port and serves_get("/healthz")


def test_compose_creates_the_topics_the_app_uses() -> None:
    """kafka-init creates every topic of core.names with the partitions `up` would give it."""
    env = as_env(riverwatch_services()["worker"]["environment"])
    partitions = int(env.get("RIVERWATCH_PARTITIONS", Settings.model_fields["partitions"].default))
    script = compose_services()["kafka-init"]["command"][0]
    assert topic_specs(script) == expected_topics(partitions)
    assert "--if-not-exists" in script


# --- Prometheus and Grafana wiring ----------------------------------------------------------------


def test_grafana_datasource_points_at_compose_prometheus() -> None:
    """The datasource URL is the compose Prometheus service and its port."""
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (ds,) = provisioned["datasources"]
    match = re.fullmatch(r"http://([\w-]+):(\d+)/?", ds["url"])
    assert match, ds["url"]
    prom = compose_services()[match.group(1)]
    assert int(match.group(2)) in {container_port(p) for p in prom.get("ports", [])}


def test_grafana_and_prometheus_mounts_match_their_configs() -> None:
    """Compose mounts the provisioning, dashboards and rules where the configs look for them."""
    grafana = bind_mounts(compose_services()["grafana"])
    assert grafana["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = grafana["deploy/grafana/dashboards"]
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"]
    assert [p["options"]["path"] for p in providers] == [dashboards_dir]
    home = as_env(compose_services()["grafana"]["environment"])[
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert (GRAFANA / "dashboards" / Path(home).relative_to(dashboards_dir)).is_file()

    prometheus = bind_mounts(compose_services()["prometheus"])
    config_dir = prometheus["deploy/prometheus"]
    for rule_file in prometheus_config()["rule_files"]:
        assert (PROMETHEUS / Path(rule_file).relative_to(config_dir)).is_file()
    for service in compose_services().values():
        for source in bind_mounts(service):
            assert (ROOT / source).exists(), source


def test_prometheus_scrapes_the_api() -> None:
    """The scrape target is the compose api service on the API's port, at a real route."""
    jobs = {j["job_name"]: j for j in prometheus_config()["scrape_configs"]}
    job = jobs["riverwatch-api"]
    assert serves_get(job.get("metrics_path", "/metrics"))
    (target,) = [t for sc in job["static_configs"] for t in sc["targets"]]
    host, port = target.split(":")
    assert host == "api" and host in compose_services()
    assert int(port) == compose_api_port()
    assert 'job="riverwatch-api"' in "\n".join(rule_expressions().values())


def test_compose_workers_serve_metrics_where_prometheus_scrapes() -> None:
    """Every worker service sets a metrics port, binds it where Prometheus can reach it, and is
    scraped there (a dns_sd job per service)."""
    jobs = prometheus_config()["scrape_configs"]
    workers = [n for n, s in riverwatch_services().items() if s["command"][0] == "worker"]
    assert sorted(workers) == ["helper", "worker"]
    for name in workers:
        env = dockerfile_env() | as_env(riverwatch_services()[name].get("environment"))
        port = int(env["RIVERWATCH_WORKER_METRICS_PORT"])
        assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"  # the metrics server binds api_host
        scraped = [sd for j in jobs for sd in j.get("dns_sd_configs", []) if name in sd["names"]]
        assert scraped and all(sd["port"] == port for sd in scraped), name


def test_compose_reads_kafka_secrets_from_an_optional_file_kept_out_of_git() -> None:
    """Every riverwatch service reads the SASL login from riverwatch-secrets.env (optional: a
    plain-text Kafka needs none) and mounts deploy/tls for the CA; neither reaches git or the
    image."""
    for name, svc in riverwatch_services().items():
        assert svc["env_file"] == [{"path": "./riverwatch-secrets.env", "required": False}], name
        assert "./deploy/tls:/etc/riverwatch/tls:ro" in svc["volumes"], name
        env = as_env(svc["environment"])
        assert "RIVERWATCH_KAFKA_SASL_PASSWORD" not in env, f"{name}: a password in the file"
    paths = ["riverwatch-secrets.env", "deploy/tls/ca.crt", "deploy/tls/README.md"]
    ignored = subprocess.run(
        ["git", "check-ignore", *paths],
        cwd=COMPOSE.parent,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == ["riverwatch-secrets.env", "deploy/tls/ca.crt"]
    docker = (COMPOSE.parent / ".dockerignore").read_text().split()
    assert {"riverwatch-secrets.env", "deploy/tls"} <= set(docker)
