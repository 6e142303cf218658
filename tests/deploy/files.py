"""Readers of the deploy files and of the app, shared by the tests of tests/deploy.

Every name a check compares against is read from the code itself (``Settings.model_fields``,
prometheus_client's registry, ``create_app``'s routes, the typer CLI, ``core.names.TOPICS``),
never copied into a test. Parsing is left to libraries where one exists: PyYAML, Docker's own
Dockerfile parser (``dockerfile``), and the PromQL parser (``promql_parser``). Compose's variable
interpolation is done here: no compose engine runs on these machines.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import dockerfile as dockerfile_parser
import pytest
import typer
import yaml

from riverwatch.core.kafka import SINGLE_PARTITION
from riverwatch.core.names import TOPICS
from riverwatch.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = DEPLOY / "requirements.lock"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
SECRET_TEMPLATE = K8S / "secret.example.yaml"
# Compose one-shot jobs: they exit when done, so they have no healthcheck and their dependents
# wait for service_completed_successfully instead of service_healthy.
ONE_SHOT_JOBS = frozenset({"kafka-init"})


# --- the app --------------------------------------------------------------------------------------


def setting_env_names() -> set[str]:
    """``RIVERWATCH_<FIELD>`` for every field of Settings."""
    return {f"RIVERWATCH_{name.upper()}" for name in Settings.model_fields}


def default_api_port() -> int:
    """Settings' default API port (read from the field, so the environment cannot change it)."""
    port = Settings.model_fields["api_port"].default
    assert isinstance(port, int)
    return port


def build_app() -> Any:
    """``api.main.create_app`` for a production-like Settings (built, never started)."""
    from riverwatch.api.main import create_app
    from riverwatch.context import Context

    s = Settings(kafka_bootstrap="kafka:9092", redis_url="redis://redis:6379/0")
    return create_app(Context.from_settings(s))


@cache
def _app() -> Any:
    return build_app()


def serves_get(path: str, app: Any = None) -> bool:
    """True when the app routes ``GET path`` to an endpoint (Starlette's own matching)."""
    from starlette.routing import Match

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    routes = (app or _app()).routes
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def cli_commands() -> dict[str, set[str]]:
    """Each `riverwatch` subcommand -> the option strings it accepts."""
    from riverwatch.shell.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    return {
        name: {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for name, cmd in commands.items()
    }


def project() -> dict[str, Any]:
    """pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- compose --------------------------------------------------------------------------------------

COMPOSE_VAR = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation (``$$``, ``${X}``, ``${X:-d}``, ``${X:?msg}``)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?") and not value:
            raise KeyError(f"{name} is required: {arg}")
        return value or ""

    return COMPOSE_VAR.sub(sub, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    """``interpolate`` applied to every string of a parsed YAML tree."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(x, env) for x in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


def required_compose_vars() -> set[str]:
    """Variables the compose file requires with ``${X:?message}``."""
    return {m.group(1) for m in COMPOSE_VAR.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}


# The value every required variable gets in these tests.
REQUIRED_VALUE = "required-in-test"


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml, interpolated with defaults (required variables set to a dummy)."""
    raw = yaml.safe_load(COMPOSE.read_text())
    tree = interpolate_tree(raw, dict.fromkeys(required_compose_vars(), REQUIRED_VALUE))
    assert isinstance(tree, dict)
    return tree


def compose_services() -> dict[str, dict[str, Any]]:
    """The services of docker-compose.yml."""
    services = compose()["services"]
    assert isinstance(services, dict) and services
    return services


def riverwatch_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the riverwatch image."""
    return {
        name: svc
        for name, svc in compose_services().items()
        if "build" in svc or str(svc.get("image", "")).startswith("riverwatch")
    }


def as_env(environment: Any) -> dict[str, str]:
    """A compose ``environment`` (mapping or ``K=V`` list) as a dict of strings."""
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {k: "" if v is None else str(v) for k, v in (environment or {}).items()}


def container_port(spec: Any) -> int:
    """The container side of a compose ``ports`` entry."""
    if isinstance(spec, dict):
        return int(spec["target"])
    return int(str(spec).split(":")[-1].split("/")[0])


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Host path (relative to the repo) -> container path of a service's bind mounts."""
    mounts = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[source.removeprefix("./")] = target
    return mounts


# --- Dockerfile (Docker's own parser) -------------------------------------------------------------


@cache
def dockerfile() -> tuple[dict[str, str], list[list[Any]]]:
    """(ARG defaults before the first FROM, the stages as lists of parsed instructions)."""
    global_args: dict[str, str] = {}
    stages: list[list[Any]] = []
    for command in dockerfile_parser.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
        elif command.cmd == "ARG":
            key, _, value = command.value[0].partition("=")
            global_args[key] = value
    return global_args, stages


def stage_args(stage: int, instruction: str) -> list[tuple[str, ...]]:
    """The values of every ``instruction`` of stage ``stage`` (-1: the final one), in order."""
    return [c.value for c in dockerfile()[1][stage] if c.cmd == instruction]


def final_stage(instruction: str) -> list[tuple[str, ...]]:
    """The values of every ``instruction`` of the final stage, in order."""
    return stage_args(-1, instruction)


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (the parser gives key, value, key, value, ...)."""
    env: dict[str, str] = {}
    for values in final_stage("ENV"):
        env.update(zip(values[::2], values[1::2], strict=True))
    return env


def base_images() -> list[str]:
    """The image of every FROM, with the global ARGs substituted."""
    args = dockerfile()[0]
    return [interpolate(stage[0].value[0], args) for stage in dockerfile()[1]]


# --- Kubernetes -----------------------------------------------------------------------------------


@cache
def k8s_objects() -> dict[str, list[dict[str, Any]]]:
    """file name -> the Kubernetes objects it holds (comment-only files hold none)."""
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        out[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return out


def k8s(kind: str) -> list[dict[str, Any]]:
    """Every object of ``kind``, the Secret template included."""
    return [o for objs in k8s_objects().values() for o in objs if o.get("kind") == kind]


def pod_templates() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod labels, pod spec) for every Deployment and Job."""
    for kind in ("Deployment", "Job"):
        for obj in k8s(kind):
            template = obj["spec"]["template"]
            yield obj["metadata"]["name"], template["metadata"]["labels"], template["spec"]


def riverwatch_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec, container) for every container running the riverwatch image."""
    for name, _, pod in pod_templates():
        for c in pod["containers"]:
            if c["image"].split(":")[0].endswith("riverwatch"):
                yield name, pod, c


def configmap_data() -> dict[str, str]:
    """The riverwatch ConfigMap's data."""
    (cm,) = k8s("ConfigMap")
    return {k: str(v) for k, v in cm["data"].items()}


def secret_template() -> dict[str, Any]:
    """The Secret template of the settings (secret.example.yaml also holds riverwatch-tls)."""
    (secret,) = (s for s in k8s("Secret") if s["metadata"]["name"] == "riverwatch-secrets")
    return secret


def k8s_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment: its envFrom ConfigMap and Secret (template), then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == k8s("ConfigMap")[0]["metadata"]["name"]
            env.update(configmap_data())
        if "secretRef" in source:
            assert source["secretRef"]["name"] == secret_template()["metadata"]["name"]
            env.update(secret_template()["stringData"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    """Port name and number -> number, for every port a container declares."""
    ports: dict[str | int, int] = {}
    for p in container.get("ports", []):
        ports[p["containerPort"]] = p["containerPort"]
        if "name" in p:
            ports[p["name"]] = p["containerPort"]
    return ports


# --- Prometheus and Grafana -----------------------------------------------------------------------


def prometheus_config() -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert isinstance(config, dict)
    return config


def rules() -> list[dict[str, Any]]:
    """Every rule of deploy/prometheus/rules.yml."""
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_expressions() -> dict[str, str]:
    """Alert (or record) name -> PromQL expression."""
    return {rule.get("alert") or rule["record"]: rule["expr"] for rule in rules()}


def dashboard() -> dict[str, Any]:
    """deploy/grafana/dashboards/riverwatch.json."""
    data = json.loads((GRAFANA / "dashboards" / "riverwatch.json").read_text())
    assert isinstance(data, dict)
    return data


def dashboard_panels() -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> dict[str, str]:
    """PromQL expression of every panel target, keyed by "panel title / refId"."""
    return {
        f"{p['title']} / {t['refId']}": t["expr"]
        for p in dashboard_panels()
        for t in p.get("targets", [])
    }


def all_queries() -> dict[str, str]:
    """Every PromQL expression of the rules and the dashboard, by where it is."""
    rules_ = {f"rules.yml {k}": v for k, v in rule_expressions().items()}
    panels = {f"riverwatch.json {k}": v for k, v in dashboard_expressions().items()}
    return rules_ | panels


def build_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings as a container with ``env`` would build them (this process's env ignored)."""
    for key in list(os.environ):
        if key.startswith("RIVERWATCH_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("RIVERWATCH_"):
            monkeypatch.setenv(key, value)
    return Settings()


def topic_specs(script: str) -> dict[str, int]:
    """``topic:partitions`` of the ``for spec in ...;`` loop of a topic-creating script."""
    match = re.search(r"for spec in ([^;]+);", script)
    assert match, "expected `for spec in topic:partitions ...;` in the topic script"
    return {t: int(n) for t, n in (spec.split(":") for spec in match.group(1).split())}


def expected_topics(partitions: int) -> dict[str, int]:
    """Every topic of core.names with the partitions `riverwatch up` gives it."""
    return {t: 1 if t in SINGLE_PARTITION else partitions for t in TOPICS}
