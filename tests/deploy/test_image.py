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
import time

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
    compose_services,
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
from tests.deploy.test_compose import build_settings

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
    assert "/healthz" in final_stage("HEALTHCHECK")[-1][-1] and serves_get("/healthz")
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
    assert healthcheck[:3] == ("CMD", "python", "-c"), healthcheck
    out["Dockerfile HEALTHCHECK"] = healthcheck[3]
    return out


def test_health_snippets_compile() -> None:
    """Every ``python -c`` health check is valid Python."""
    snippets = python_c_snippets()
    assert len(snippets) >= 5
    for where, code in snippets.items():
        compile(code, where, "exec")


def worker_check() -> str:
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
    build_settings(monkeypatch, {})  # clears RIVERWATCH_* of this process
    with pytest.raises(SystemExit) as exit_:
        exec(worker_check(), {"__name__": "healthcheck"})
    assert (exit_.value.code == 0) is healthy


def test_create_app_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the app (as the route checks do) opens no connection."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("create_app must not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    app = build_app()
    assert all(serves_get(p, app) for p in ("/healthz", "/readyz", "/metrics"))
    assert not serves_get("/no-such-route", app)
