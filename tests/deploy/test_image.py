"""deploy/Dockerfile, its lock file and the health checks of every container.

hadolint lints the Dockerfile (test_tools.py); Docker's own parser (``dockerfile``) reads it
here for what no linter knows: the image runs the app's CLI, binds the app's port, installs
exactly the locked dependencies, and the health checks run against the code.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import socket

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.files import (
    DOCKERIGNORE,
    LOCK,
    ROOT,
    base_images,
    build_app,
    cli_commands,
    default_api_port,
    dockerfile,
    dockerfile_env,
    final_stage,
    project,
    riverwatch_containers,
    riverwatch_services,
    serves_get,
    stage_args,
)

# --- the Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_is_multistage_and_runs_as_non_root() -> None:
    """Builder installs the lock, then the package, into a venv; the runtime copies it and
    drops root; it runs the CLI's `api` on the app's port."""
    assert len(dockerfile()[1]) >= 2
    builder_run = " ".join(v[0] for v in stage_args(0, "RUN"))
    assert "venv /opt/venv" in builder_run
    assert "pip install --requirement deploy/requirements.lock" in builder_run
    assert "pip install --no-deps ." in builder_run and "pip check" in builder_run
    copy = [c for c in dockerfile()[1][-1] if c.cmd == "COPY"]
    assert any("--from=builder" in c.flags and c.value[0] == "/opt/venv" for c in copy)
    user = final_stage("USER")[-1][0].split(":")[0]
    assert user.isdigit() and int(user) != 0, "numeric non-root USER (k8s runAsNonRoot needs it)"
    assert final_stage("ENTRYPOINT")[-1] == ("riverwatch",)
    assert final_stage("CMD")[-1] == ("api",)
    assert "api" in cli_commands()
    # `riverwatch healthcheck api` asks /healthz (tests/integration/test_cli.py)
    assert final_stage("HEALTHCHECK")[-1][-3:] == ("riverwatch", "healthcheck", "api")
    assert "healthcheck" in cli_commands() and serves_get("/healthz")
    assert dockerfile_env()["RIVERWATCH_API_HOST"] == "0.0.0.0"
    assert int(dockerfile_env()["RIVERWATCH_API_PORT"]) == default_api_port()
    assert str(default_api_port()) in final_stage("EXPOSE")[-1]


def test_base_image_is_pinned() -> None:
    """Both stages use one base image, pinned to an exact Python release and Debian release
    (issue 13; a digest cannot be looked up offline)."""
    images = set(base_images())
    assert len(images) == 1, images
    (image,) = images
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-([a-z]+)(@sha256:[0-9a-f]{64})?", image)
    assert match, f"{image}: pin python:X.Y.Z-slim-<debian release>"
    requires = project()["project"]["requires-python"]
    assert f"{match.group(1)}.{match.group(2)}" in Requirement(f"python{requires}").specifier


def test_dockerfile_copies_every_package_and_dockerignore_keeps_them() -> None:
    """Every package pyproject installs is copied; .dockerignore drops local state, not sources."""
    include = project()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in include)
    }
    copied = {source for value in stage_args(0, "COPY") for source in value[:-1]}
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert project()["project"]["readme"] in copied
    assert str(LOCK.relative_to(ROOT)) in copied
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


# --- the lock file --------------------------------------------------------------------------------


def lock_pins() -> dict[str, str]:
    """Canonical name -> version of every pin of deploy/requirements.lock."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[\w.!+-]+", version), f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_pins_every_requirement_at_an_allowed_version() -> None:
    """Every dependency of pyproject (extras included) is pinned, within its specifier."""
    pins = lock_pins()
    assert "riverwatch" not in pins
    for spec in project()["project"]["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK.name}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (spec, pins[name])


def test_lock_is_closed_where_this_venv_shows_the_metadata() -> None:
    """From pyproject's dependencies (with their extras) down, every requirement (for this
    platform) is pinned within its specifier, as far as this venv has the pinned version's
    metadata: `pip check` on the lock. A stale lock fails here: run `make lock`."""
    pins = lock_pins()
    todo = [Requirement(spec) for spec in project()["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not pinned in {LOCK.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (str(req), pins[name])
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if dist.version != pins[name]:
            continue  # this venv has another version: its requirements are not known here
        for spec in dist.requires or []:
            sub = Requirement(spec)
            wanted = {"", *req.extras}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in wanted):
                todo.append(sub)
    assert len(seen) > len(project()["project"]["dependencies"]), "walked no further than the roots"


# --- health checks --------------------------------------------------------------------------------


def health_checks() -> dict[str, list[str]]:
    """where -> command of every health check of a riverwatch container: compose services,
    Kubernetes probes (exec) and the image's HEALTHCHECK."""
    out = {}
    for name, svc in riverwatch_services().items():
        if "healthcheck" in svc:
            out[f"compose {name}"] = list(svc["healthcheck"]["test"])
    for workload, _, c in riverwatch_containers():
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if command := c.get(probe, {}).get("exec", {}).get("command"):
                out[f"k8s {workload} {probe}"] = ["CMD", *command]
    (healthcheck,) = final_stage("HEALTHCHECK")
    out["Dockerfile HEALTHCHECK"] = list(healthcheck)
    return out


def test_every_health_check_is_the_cli_for_its_role() -> None:
    """One check, `riverwatch healthcheck <target>` (tested against a real Redis and API in
    tests/integration/test_cli.py), with the target the container's command runs."""
    from riverwatch.shell.cli import HealthTarget

    checks = health_checks()
    assert len(checks) >= 9, checks
    for where, test in checks.items():
        assert test[:3] == ["CMD", "riverwatch", "healthcheck"], (where, test)
        assert len(test) == 4 and test[3] in set(HealthTarget), (where, test)
    for name, svc in riverwatch_services().items():
        if "healthcheck" in svc:
            want = {"api": "api", "worker": "worker"}.get(svc["command"][0], "producer")
            assert checks[f"compose {name}"][3] == want, name
    for workload, _, c in riverwatch_containers():
        if c["args"][0] == "worker":
            assert checks[f"k8s {workload} livenessProbe"][3] == "worker", workload
    assert checks["Dockerfile HEALTHCHECK"][3] == "api"  # the image's default command


def test_worker_roles_together_are_all_of_them() -> None:
    """The compose services and k8s Deployments of workers run every role, each once."""
    from riverwatch.streams.app import ROLES

    for where, args in (
        ("compose", [s["command"] for s in riverwatch_services().values()]),
        ("k8s", [c["args"] for _, _, c in riverwatch_containers()]),
    ):
        roles = [r for a in args if a[0] == "worker" for r in a[a.index("--roles") + 1].split(",")]
        assert sorted(roles) == sorted(ROLES), where


def test_create_app_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the app (as the route checks do) opens no connection."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("create_app must not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    app = build_app()
    assert all(serves_get(p, app) for p in ("/healthz", "/readyz", "/metrics"))
    assert not serves_get("/no-such-route", app)
