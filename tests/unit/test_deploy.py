"""Cross-checks of the deploy files against the app: pure parsing, no network, no Docker.

docker-compose.yml, deploy/Dockerfile, deploy/k8s, deploy/prometheus and deploy/grafana name
settings, metrics, ports, routes, commands and topics of the app. No Docker engine runs here, so
these tests are what stops those names from drifting away from the code: each one is read from
the code itself (``Settings.model_fields``, prometheus_client's registry, ``create_app``'s
routes, the typer CLI, ``core.names.TOPICS``), never copied into the test.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import socket
import time
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prometheus_client import REGISTRY

import core.metrics  # noqa: F401  (registers the app's metrics in prometheus_client's REGISTRY)
from core.kafka import SINGLE_PARTITION
from core.names import TOPICS
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
SECRET_TEMPLATE = K8S / "secret.example.yaml"

# Metrics that issue 6 asks for but the app does not export yet. Rules and panels already query
# them under these names, so they light up when the metrics land. Every run reports this list
# (test_pending_metrics_report, a SKIPPED line with -ra), and fails once a name is exported (then
# delete it here) or is no longer used. Any other unknown metric name fails
# test_queries_name_only_exported_metrics.
PENDING_METRICS: dict[str, str] = {}
# Series Prometheus adds to every scrape target itself.
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# Compose one-shot jobs: they exit when done, so they have no healthcheck and their dependents
# wait for service_completed_successfully instead of service_healthy.
ONE_SHOT_JOBS = frozenset({"kafka-init"})
# Labels Prometheus attaches to every scraped series, and the histogram bucket label.
IMPLICIT_LABELS = frozenset({"job", "instance", "le"})


# --- reading the app ----------------------------------------------------------------------------


def setting_env_names() -> set[str]:
    """``RIVERWATCH_<FIELD>`` for every field of Settings."""
    return {f"RIVERWATCH_{name.upper()}" for name in Settings.model_fields}


def default_api_port() -> int:
    """Settings' default API port (read from the field, so the environment cannot change it)."""
    port = Settings.model_fields["api_port"].default
    assert isinstance(port, int)
    return port


_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


@cache
def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the app exports -> its label names.

    Names come from REGISTRY.collect() (a Counter ``x`` exports ``x_total``, a Histogram ``x``
    exports ``x_bucket``/``x_sum``/``x_count``); label names from the collector objects, which
    prometheus_client keeps only in private attributes.
    """
    names_to_collectors = getattr(REGISTRY, "_names_to_collectors", {})
    out: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        collector = names_to_collectors.get(family.name)
        labels = frozenset(getattr(collector, "_labelnames", ()))
        for suffix in _SERIES_SUFFIXES[family.type]:
            out[family.name + suffix] = labels
    return out


def build_app() -> Any:
    """``api.main.create_app`` for a production-like Settings (built, never started)."""
    from api.main import create_app

    return create_app(Settings(kafka_bootstrap="kafka:9092", redis_url="redis://redis:6379/0"))


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
    from riverwatch.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    return {
        name: {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for name, cmd in commands.items()
    }


def project() -> dict[str, Any]:
    """pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- PromQL: which metrics (and labels) an expression reads -------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GRAFANA_VAR = re.compile(r"\$\{?\w+\}?")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?\b")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "atan2"}
)


def promql_selectors(expr: str) -> list[tuple[str, frozenset[str]]]:
    """(metric name, label names it matches on) for each metric an expression reads."""
    text = _STRING.sub('""', _GRAFANA_VAR.sub("", expr))
    text = _RANGE.sub("", _GROUPING.sub("", text))
    text = _NUMBER.sub("", text)
    found = []
    for m in _SELECTOR.finditer(text):
        name, braces = m.group(1), m.group(2)
        if not name:
            continue
        if not braces and text[m.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation, not a metric
        if name in _PROMQL_WORDS:
            continue
        found.append((name, frozenset(_MATCHER.findall(braces or ""))))
    return found


def promql_grouping_labels(expr: str) -> set[str]:
    """Label names in ``by (...)``, ``on (...)`` and friends."""
    text = _STRING.sub('""', expr)
    return {label.strip() for group in _GROUPING.findall(text) for label in group.split(",")} - {""}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (topic) (rate(a_total{outcome="x", topic=~"y"}[$__rate_interval])) / b > 1e-3',
            [("a_total", {"outcome", "topic"}), ("b", set())],
        ),
        (
            "histogram_quantile(0.99, sum by (le, route) (rate(h_bucket[5m])))",
            [("h_bucket", set())],
        ),
        ('up{job="api"} == 0 and on () max(abs(g)) > 0.5', [("up", {"job"}), ("g", set())]),
        ("max by (attribute, metric) (f)", [("f", set())]),
    ],
)
def test_promql_selector_extraction(expr: str, expected: list[tuple[str, set[str]]]) -> None:
    """The extractor the metric cross-checks rely on finds exactly the metrics read."""
    assert promql_selectors(expr) == [(n, frozenset(labels)) for n, labels in expected]


# --- reading the deploy files -------------------------------------------------------------------

_COMPOSE_VAR = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")


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

    return _COMPOSE_VAR.sub(sub, text)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(x, env) for x in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def required_compose_vars() -> set[str]:
    """Variables the compose file requires with ``${X:?message}``."""
    return {m.group(1) for m in _COMPOSE_VAR.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml, interpolated with defaults (required variables set to a dummy)."""
    raw = yaml.safe_load(COMPOSE.read_text())
    tree = _interpolate_tree(raw, {name: "required-in-test" for name in required_compose_vars()})
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


@cache
def dockerfile() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """(ARG defaults before the first FROM, the stages as lists of (INSTRUCTION, arguments))."""
    lines: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, args.strip()))
        elif instruction == "ARG" and "=" in args:
            key, _, value = args.strip().partition("=")
            global_args[key] = value
    return global_args, stages


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments)."""
    return dockerfile()[1]


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (``K=V`` pairs)."""
    env: dict[str, str] = {}
    for instruction, args in dockerfile_stages()[-1]:
        if instruction == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def final_stage(instruction: str) -> list[str]:
    """Arguments of every ``instruction`` in the final stage, in order."""
    return [args for i, args in dockerfile_stages()[-1] if i == instruction]


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


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) for every Deployment and Job."""
    for kind in ("Deployment", "Job"):
        for obj in k8s(kind):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def riverwatch_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec, container) for every container running the riverwatch image."""
    for name, pod in pod_templates():
        for c in pod["containers"]:
            if c["image"].split(":")[0].endswith("riverwatch"):
                yield name, pod, c


def configmap_data() -> dict[str, str]:
    """The riverwatch ConfigMap's data."""
    (cm,) = k8s("ConfigMap")
    return {k: str(v) for k, v in cm["data"].items()}


def secret_template() -> dict[str, Any]:
    """The Secret template."""
    (secret,) = k8s("Secret")
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


def prometheus_config() -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert isinstance(config, dict)
    return config


def rule_expressions() -> dict[str, str]:
    """Alert name -> PromQL expression, from deploy/prometheus/rules.yml."""
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
    }


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
    rules = {f"rules.yml {k}": v for k, v in rule_expressions().items()}
    panels = {f"riverwatch.json {k}": v for k, v in dashboard_expressions().items()}
    return rules | panels


def python_c_snippets() -> dict[str, str]:
    """Code of every ``python -c`` health check in compose, Kubernetes and the Dockerfile."""
    out = {}
    for name, svc in compose_services().items():
        test = svc.get("healthcheck", {}).get("test", [])
        if test[1:3] == ["python", "-c"]:
            out[f"compose {name}"] = test[3]
    for workload, _, c in riverwatch_containers():
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = c.get(probe, {}).get("exec", {}).get("command", [])
            if command[:2] == ["python", "-c"]:
                out[f"k8s {workload} {probe}"] = command[2]
    (healthcheck,) = final_stage("HEALTHCHECK")
    command = shlex.split(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"], healthcheck
    out["Dockerfile HEALTHCHECK"] = command[2]
    return out


# --- settings: every RIVERWATCH_* variable is a real setting, and the values validate -----------

_ENV_REF = re.compile(r"\bRIVERWATCH_[A-Z0-9_]+\b")


def _deploy_files() -> list[Path]:
    return [COMPOSE, DOCKERFILE, *sorted(K8S.glob("*.yaml"))]


@pytest.mark.parametrize("path", _deploy_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_riverwatch_variable_is_a_setting(path: Path) -> None:
    """A misspelt or removed setting in a deploy file would be silently ignored at run time."""
    referenced = set(_ENV_REF.findall(path.read_text()))
    unknown = referenced - setting_env_names()
    assert not unknown, f"{path.name} names variables that are no field of Settings: {unknown}"


def test_deploy_files_reference_settings_at_all() -> None:
    """Guard against the check above passing because the regex found nothing."""
    found = {v for p in _deploy_files() for v in _ENV_REF.findall(p.read_text())}
    assert {"RIVERWATCH_KAFKA_BOOTSTRAP", "RIVERWATCH_REDIS_URL", "RIVERWATCH_ENV"} <= found


def _build_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings as a container with ``env`` would build them (this process's env ignored)."""
    for key in list(os.environ):
        if key.startswith("RIVERWATCH_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("RIVERWATCH_"):
            monkeypatch.setenv(key, value)
    return Settings()


@pytest.mark.parametrize("service", sorted(riverwatch_services()))
def test_compose_settings_validate(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    """Image ENV + the service's environment build valid production Settings."""
    env = dockerfile_env() | as_env(riverwatch_services()[service].get("environment"))
    s = _build_settings(monkeypatch, env)
    assert s.env == "production"
    assert s.kafka_bootstrap and s.redis_url


@pytest.mark.parametrize("workload", sorted({w for w, _, _ in riverwatch_containers()}))
def test_k8s_settings_validate(monkeypatch: pytest.MonkeyPatch, workload: str) -> None:
    """Image ENV + ConfigMap + Secret template + env build valid production Settings."""
    for name, _, container in riverwatch_containers():
        if name == workload:
            s = _build_settings(monkeypatch, dockerfile_env() | k8s_env(container))
            assert s.env == "production"


def test_compose_requires_its_secrets() -> None:
    """Passwords come from ``${VAR:?message}``: compose refuses to start without them."""
    text = COMPOSE.read_text()
    secret_keys = re.findall(
        r"^\s*([A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN)[A-Z0-9_]*):\s*(.*)$", text, re.M
    )
    assert secret_keys, "expected at least the Grafana admin password"
    for key, value in secret_keys:
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?.+\}", value.strip()), f"{key} must be ${{X:?...}}"
    raw = yaml.safe_load(text)
    with pytest.raises(KeyError, match="GRAFANA_ADMIN_PASSWORD"):
        _interpolate_tree(raw, {})


# --- metrics: every queried metric is exported (or explicitly pending) ---------------------------


def test_queries_name_only_exported_metrics() -> None:
    """Every metric a Prometheus rule or a Grafana panel reads is exported by the app."""
    exported = exported_series()
    known = exported.keys() | PENDING_METRICS.keys() | PROMETHEUS_SYNTHETIC
    problems = []
    used_exported = set()
    for where, expr in all_queries().items():
        for name, labels in promql_selectors(expr):
            if name not in known:
                problems.append(f"{where}: unknown metric {name}")
            elif name in exported:
                used_exported.add(name)
                extra = labels - exported[name] - IMPLICIT_LABELS
                if extra:
                    problems.append(f"{where}: {name} has no label {sorted(extra)}")
    assert not problems, "\n".join(problems)
    assert len(used_exported) >= 5, f"suspiciously few metrics found: {used_exported}"


def test_query_grouping_labels_exist() -> None:
    """``by (...)`` / ``on (...)`` labels are labels of a metric the expression reads."""
    exported = exported_series()
    problems = []
    for where, expr in all_queries().items():
        names = [n for n, _ in promql_selectors(expr)]
        if any(n not in exported for n in names):
            continue  # pending or synthetic metrics: their labels are not known yet
        allowed = set(IMPLICIT_LABELS).union(*(exported[n] for n in names))
        missing = promql_grouping_labels(expr) - allowed
        if missing:
            problems.append(f"{where}: grouping by {sorted(missing)}, not labels of {names}")
    assert not problems, "\n".join(problems)


def test_pending_metrics_report() -> None:
    """Report the pending metrics; fail when one is exported now or no longer queried."""
    exported = exported_series()
    used = {name for expr in all_queries().values() for name, _ in promql_selectors(expr)}
    landed = sorted(PENDING_METRICS.keys() & exported.keys())
    assert not landed, f"now exported, delete from PENDING_METRICS: {landed}"
    stale = sorted(PENDING_METRICS.keys() - used)
    assert not stale, f"no rule or panel queries these, delete from PENDING_METRICS: {stale}"
    if not PENDING_METRICS:
        return  # every metric the deploy files query is exported
    where = {
        name: sorted(w.split(" ", 1)[0] for w, e in all_queries().items() if name in e)
        for name in PENDING_METRICS
    }
    pytest.skip(
        "PENDING_METRICS, queried but not exported yet: "
        + "; ".join(f"{n} ({', '.join(sorted(set(w)))})" for n, w in sorted(where.items()))
    )


def test_rules_cover_the_required_alerts() -> None:
    """Alert rules for consumer lag, dead letters, drift, fairness and missing scores exist."""
    exprs = rule_expressions()
    joined = "\n".join(exprs.values())
    assert "riverwatch_consumer_lag" in joined
    assert 'outcome="deadletter"' in joined
    assert "riverwatch_drift_share" in joined
    assert "riverwatch_fairness_difference" in joined
    assert any('outcome="scored"' in e and "== 0" in e for e in exprs.values())
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]


def test_dashboard_has_the_required_panels() -> None:
    """Throughput, latency quantiles, dead letters, batch size, HTTP, model version, monitors."""
    exprs = "\n".join(dashboard_expressions().values())
    for needle in (
        "sum by (topic, outcome) (rate(riverwatch_events_total",
        "histogram_quantile(0.5, sum by (le) (rate(riverwatch_score_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(riverwatch_score_latency_seconds_bucket",
        'outcome="deadletter"',
        "riverwatch_batch_size_",
        "riverwatch_http_request_duration_seconds_bucket",
        "riverwatch_model_version",
        "riverwatch_drift_share",
        "riverwatch_fairness_difference",
        "riverwatch_consumer_lag",
    ):
        assert needle in exprs, needle
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# --- Grafana and Prometheus wiring ---------------------------------------------------------------


def test_dashboard_uses_the_provisioned_datasource() -> None:
    """Every panel and target names the datasource uid that provisioning creates."""
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (ds,) = provisioned["datasources"]
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        for item in (panel, *panel["targets"]):
            assert item["datasource"] == {"type": ds["type"], "uid": ds["uid"]}, panel["title"]


def test_grafana_datasource_points_at_compose_prometheus() -> None:
    """The datasource URL is the compose Prometheus service and its port."""
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (ds,) = provisioned["datasources"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)/?", ds["url"]).groups()  # type: ignore[union-attr]
    prom = compose_services()[host]
    assert int(port) in {container_port(p) for p in prom.get("ports", [])}


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
    api_port = _compose_api_port()
    jobs = {j["job_name"]: j for j in prometheus_config()["scrape_configs"]}
    job = jobs["riverwatch-api"]
    assert serves_get(job.get("metrics_path", "/metrics"))
    (target,) = [t for sc in job["static_configs"] for t in sc["targets"]]
    host, port = target.split(":")
    assert host == "api" and host in compose_services()
    assert int(port) == api_port
    assert 'job="riverwatch-api"' in "\n".join(rule_expressions().values())


# --- compose -------------------------------------------------------------------------------------


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
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
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


def _compose_api_port() -> int:
    (api,) = [s for s in riverwatch_services().values() if s["command"][0] == "api"]
    env = dockerfile_env() | as_env(api.get("environment"))
    return int(env.get("RIVERWATCH_API_PORT", default_api_port()))


def test_compose_api_port_host_and_healthcheck_match_the_app() -> None:
    """The API binds 0.0.0.0 on the port compose publishes and checks, at a real route."""
    (api,) = [s for s in riverwatch_services().values() if s["command"][0] == "api"]
    env = dockerfile_env() | as_env(api.get("environment"))
    assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"
    port = _compose_api_port()
    assert port in {container_port(p) for p in api["ports"]}
    check = " ".join(api["healthcheck"]["test"])
    path = re.search(rf"(?:127\.0\.0\.1|localhost):{port}(/\w+)", check)
    assert path, f"healthcheck does not call port {port}: {check}"
    assert path.group(1) == "/healthz" and serves_get("/healthz")


def test_compose_creates_the_topics_the_app_uses() -> None:
    """kafka-init creates every topic of core.names with the partitions `up` would give it."""
    env = as_env(riverwatch_services()["worker"]["environment"])
    partitions = int(env.get("RIVERWATCH_PARTITIONS", Settings.model_fields["partitions"].default))
    script = compose_services()["kafka-init"]["command"][0]
    assert _topic_specs(script) == _expected_topics(partitions)
    assert "--if-not-exists" in script


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_is_multistage_and_runs_as_non_root() -> None:
    """Builder installs from pyproject into a venv; the runtime copies it and drops root."""
    stages = dockerfile_stages()
    assert len(stages) >= 2
    runtime_from = interpolate(final_stage("FROM")[0].split()[0], dockerfile()[0])
    assert runtime_from == "python:3.11-slim"
    builder_run = " ".join(a for i, a in stages[0] if i == "RUN")
    assert "venv /opt/venv" in builder_run and "pip install ." in builder_run
    assert any(a.startswith("--from=builder /opt/venv") for a in final_stage("COPY"))
    user = final_stage("USER")[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "numeric non-root USER (k8s runAsNonRoot needs it)"
    assert json.loads(final_stage("ENTRYPOINT")[-1]) == ["riverwatch"]
    assert json.loads(final_stage("CMD")[-1]) == ["api"]
    assert "api" in cli_commands()
    assert "/healthz" in final_stage("HEALTHCHECK")[-1] and serves_get("/healthz")
    assert dockerfile_env()["RIVERWATCH_API_HOST"] == "0.0.0.0"
    assert int(dockerfile_env()["RIVERWATCH_API_PORT"]) == default_api_port()
    assert str(default_api_port()) in final_stage("EXPOSE")[-1].split()


def test_dockerfile_copies_every_package_and_dockerignore_keeps_them() -> None:
    """Every package pyproject installs is copied; .dockerignore drops local state, not sources."""
    include = project()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in include)
    }
    copied = set()
    for args in (a for i, a in dockerfile_stages()[0] if i == "COPY"):
        copied.update(args.split()[:-1])
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert project()["project"]["readme"] in copied
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for must in (".git", ".venv", ".riverwatch", "test-artifacts"):
        assert must in ignored, f".dockerignore must exclude {must}"
    for source in copied:
        assert (ROOT / source).exists(), source
        hits = [p for p in ignored if fnmatch.fnmatch(source, p) or source.startswith(p + "/")]
        assert not hits, f".dockerignore {hits} drops {source}, which the Dockerfile copies"


def test_health_snippets_compile() -> None:
    """Every ``python -c`` health check is valid Python."""
    snippets = python_c_snippets()
    assert len(snippets) >= 5
    for where, code in snippets.items():
        compile(code, where, "exec")


# --- Kubernetes ----------------------------------------------------------------------------------


def test_k8s_deployments_have_requests_limits_probes_and_run_as_non_root() -> None:
    """Resources on every container, probes on every Deployment, no root, no service links."""
    user = int(final_stage("USER")[-1].split(":")[0])
    for workload, pod in pod_templates():
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
        assert pod["securityContext"]["runAsUser"] == user, f"{workload}: the image's USER"
    for obj in k8s("Deployment"):
        for c in obj["spec"]["template"]["spec"]["containers"]:
            assert c.get("livenessProbe") and c.get("readinessProbe"), obj["metadata"]["name"]


def _container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for p in container.get("ports", []):
        ports[p["containerPort"]] = p["containerPort"]
        if "name" in p:
            ports[p["name"]] = p["containerPort"]
    return ports


def test_k8s_api_probes_ports_and_host_match_the_app() -> None:
    """Liveness on /healthz, readiness on /readyz, on the port the API binds, at real routes."""
    apis = [(w, c) for w, _, c in riverwatch_containers() if c["args"][0] == "api"]
    assert apis
    for workload, c in apis:
        env = dockerfile_env() | k8s_env(c)
        port = int(env.get("RIVERWATCH_API_PORT", default_api_port()))
        assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"
        ports = _container_ports(c)
        assert port in ports.values()
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path and serves_get(path), (workload, probe)
            assert ports[get["port"]] == port, (workload, probe)
        if "startupProbe" in c:
            assert serves_get(c["startupProbe"]["httpGet"]["path"])
    deployments = {d["metadata"]["name"]: d for d in k8s("Deployment")}
    for workload, _ in apis:
        annotations = deployments[workload]["spec"]["template"]["metadata"]["annotations"]
        assert serves_get(annotations["prometheus.io/path"])
        assert int(annotations["prometheus.io/port"]) == port


def test_k8s_services_and_pdb_select_real_pods() -> None:
    """Service and PDB selectors match a Deployment's pods; Service ports reach a container."""
    deployments = k8s("Deployment")

    def selected(selector: dict[str, str]) -> list[dict[str, Any]]:
        return [
            d
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]

    for d in deployments:
        assert d["spec"]["selector"]["matchLabels"].items() <= (
            d["spec"]["template"]["metadata"]["labels"].items()
        )
    services = k8s("Service")
    assert services
    for svc in services:
        (target,) = selected(svc["spec"]["selector"])
        ports = _container_ports(target["spec"]["template"]["spec"]["containers"][0])
        for p in svc["spec"]["ports"]:
            assert p.get("targetPort", p["port"]) in ports, svc["metadata"]["name"]
    (pdb,) = k8s("PodDisruptionBudget")
    (target,) = selected(pdb["spec"]["selector"]["matchLabels"])
    assert target["spec"]["template"]["spec"]["containers"][0]["args"][:3] == [
        "worker",
        "--roles",
        "scoring,learning",
    ]


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
    assert _topic_specs(script) == _expected_topics(partitions)
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
    resources = set(kustomization["resources"])
    with_objects = {
        name
        for name, objs in k8s_objects().items()
        if objs and name not in {"kustomization.yaml", SECRET_TEMPLATE.name}
    }
    assert resources == with_objects
    assert "namespace" not in kustomization, "keep the base namespace-agnostic"
    for objs in k8s_objects().values():
        for obj in objs:
            assert "namespace" not in obj.get("metadata", {}), obj["metadata"]
    (image,) = kustomization["images"]
    assert image["newTag"] == project()["project"]["version"]
    for _, pod in pod_templates():
        for c in pod["containers"]:
            assert c["image"] == image["name"] or re.fullmatch(r"[\w./-]+:[\w.-]+", c["image"])
            assert not c["image"].endswith(":latest"), c["image"]


# --- the worker heartbeat check (compose healthcheck and k8s probes) -----------------------------


def _worker_check() -> str:
    """The one heartbeat check of every worker container: compose services and k8s probes."""
    workers = [s for s in riverwatch_services().values() if s["command"][0] == "worker"]
    assert {tuple(s["command"][1:]) for s in workers} == {
        ("--roles", "scoring,learning"),
        ("--roles", "alerts,forecasting,monitoring,training"),
    }
    codes = set()
    for svc in workers:
        test = svc["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        codes.add(test[3])
    (code,) = codes
    probes = [
        c[probe]["exec"]["command"]
        for _, _, c in riverwatch_containers()
        if c["args"][0] == "worker"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    ]
    assert len(probes) == 6 and all(p == ["python", "-c", code] for p in probes)
    return code


def test_worker_roles_together_are_all_of_them() -> None:
    """The compose services and k8s Deployments of workers run every role, each once."""
    from streams.app import ROLES

    for where, args in (
        ("compose", [s["command"] for s in riverwatch_services().values()]),
        ("k8s", [c["args"] for _, _, c in riverwatch_containers()]),
    ):
        roles = [r for a in args if a[0] == "worker" for r in a[a.index("--roles") + 1].split(",")]
        assert sorted(roles) == sorted(ROLES), where


class _FakeRedis:
    def __init__(self, beats: dict[str, dict[bytes, bytes]]):
        self.beats = beats

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        assert key.endswith(("rw:workers", "rw:helpers")), key
        return self.beats.get(key.rsplit(":", 1)[1], {})


@pytest.mark.parametrize(
    ("beats", "healthy"),
    [
        ({b"pod-a:1": b"NOW"}, True),
        ({b"pod-a:1": b"OLD", b"pod-a:7": b"NOW"}, True),  # restarted: the new pid beats
        ({b"pod-a:1": b"OLD"}, False),  # stale
        ({b"pod-b:1": b"NOW"}, False),  # another worker's beat
        ({b"helper/pod-a:1": b"NOW"}, True),  # a helper (no scoring role) beats elsewhere
        ({b"helper/pod-a:1": b"OLD"}, False),
        ({}, False),
    ],
)
def test_worker_heartbeat_check(
    monkeypatch: pytest.MonkeyPatch, beats: dict[bytes, bytes], healthy: bool
) -> None:
    """Healthy exactly when this host's heartbeat is younger than 3 beats (as /readyz counts)."""
    import core.redis

    now = time.time()
    values = {b"NOW": str(now).encode(), b"OLD": str(now - 60).encode()}
    split: dict[str, dict[bytes, bytes]] = {"workers": {}, "helpers": {}}
    for k, v in beats.items():
        hash_, _, wid = k.rpartition(b"/")
        split["helpers" if hash_ else "workers"][wid] = values[v]
    fake = _FakeRedis(split)
    monkeypatch.setattr(core.redis, "redis_client", lambda _settings: fake)
    monkeypatch.setattr(socket, "gethostname", lambda: "pod-a")
    _build_settings(monkeypatch, {})  # clears RIVERWATCH_* of this process
    with pytest.raises(SystemExit) as exit_:
        exec(_worker_check(), {"__name__": "healthcheck"})
    assert (exit_.value.code == 0) is healthy


# --- the app as the manifests need it -------------------------------------------------------------


def test_create_app_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the app (as the route checks do) opens no connection."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("create_app must not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    app = build_app()
    assert all(serves_get(p, app) for p in ("/healthz", "/readyz", "/metrics"))
    assert not serves_get("/no-such-route", app)


def _topic_specs(script: str) -> dict[str, int]:
    match = re.search(r"for spec in ([^;]+);", script)
    assert match, "expected `for spec in topic:partitions ...;` in the topic script"
    return {t: int(n) for t, n in (spec.split(":") for spec in match.group(1).split())}


def _expected_topics(partitions: int) -> dict[str, int]:
    return {t: 1 if t in SINGLE_PARTITION else partitions for t in TOPICS}


def test_workers_serve_metrics_where_prometheus_scrapes() -> None:
    """Every worker service and Deployment sets a metrics port, binds it where Prometheus can
    reach it, and is scraped there (compose: a dns_sd job per service; k8s: annotations)."""
    jobs = prometheus_config()["scrape_configs"]
    compose_workers = [n for n, s in riverwatch_services().items() if s["command"][0] == "worker"]
    assert sorted(compose_workers) == ["helper", "worker"]
    for name in compose_workers:
        env = dockerfile_env() | as_env(riverwatch_services()[name].get("environment"))
        port = int(env["RIVERWATCH_WORKER_METRICS_PORT"])
        assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"  # the metrics server binds api_host
        scraped = [sd for j in jobs for sd in j.get("dns_sd_configs", []) if name in sd["names"]]
        assert scraped and all(sd["port"] == port for sd in scraped), name
    deployments = {d["metadata"]["name"]: d for d in k8s("Deployment")}
    k8s_workers = [(w, c) for w, _, c in riverwatch_containers() if c["args"][0] == "worker"]
    assert len(k8s_workers) == 2
    for workload, c in k8s_workers:
        env = dockerfile_env() | k8s_env(c)
        port = int(env["RIVERWATCH_WORKER_METRICS_PORT"])
        assert env["RIVERWATCH_API_HOST"] == "0.0.0.0"
        assert port in _container_ports(c).values(), workload
        annotations = deployments[workload]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
