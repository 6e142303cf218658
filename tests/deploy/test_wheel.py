"""The wheel works: built from the sources, installed in a fresh virtualenv outside the checkout,
`riverwatch up --for 30` from it scores a transaction.

The fresh venv gets the wheel alone (``--no-deps``); its dependencies come from the project's
.venv through a .pth line naming .venv's site-packages. Python adds such a directory to sys.path
without running the .pth files in it, so .venv's editable install (a finder hooked in by a .pth
file) stays off and neither the checkout nor its folders can shadow the wheel: every import of
the app must resolve inside the fresh venv, which the test checks before it starts anything.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest

from riverwatch.shell.procs import free_port
from tests.deploy.files import ROOT, project
from tests.support.workers import poll

pytestmark = pytest.mark.slow

# The distribution installs one top-level package; the layers are its subpackages.
PACKAGES = tuple(
    f"riverwatch{sub}"
    for sub in ("", ".core", ".models", ".monitors", ".alerts", ".stores", ".streams", ".api")
)


def build_wheel(tmp: Path) -> Path:
    """`pip wheel --no-deps` of a copy of the sources (the build leaves nothing in the checkout)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", project()["project"]["readme"]):
        shutil.copy(ROOT / name, src / name)
    include = project()["tool"]["setuptools"]["packages"]["find"]["include"]
    for path in ROOT.iterdir():
        if (path / "__init__.py").is_file() and any(fnmatch.fnmatch(path.name, p) for p in include):
            shutil.copytree(path, src / path.name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("riverwatch-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv holding the wheel; .venv's site-packages visible through a .pth line."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The wheel goes in before the .pth exists, so pip sees no other riverwatch.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", wheel],
        check=True,
        timeout=120,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "riverwatch-test-deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without RIVERWATCH_* and PYTHONPATH, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RIVERWATCH_") and k not in ("PYTHONPATH", "PYTHONHOME")
    }
    return env | extra


def test_wheel_holds_the_dashboard_and_up_from_it_scores(tmp_path: Path) -> None:
    """The wheel has every package and the dashboard's static files; installed in a fresh venv,
    the app imports from there, and `riverwatch up --for 30` scores a posted transaction."""
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"riverwatch"}, f"the wheel installs more than riverwatch: {sorted(tops)}"
    api = ROOT / "riverwatch" / "api" / "static"
    static = sorted(p.name for p in api.iterdir() if p.is_file())
    assert static and all(f"riverwatch/api/static/{name}" in names for name in static), static
    assert not any(n.startswith(("tests/", "bench/", "deploy/")) for n in names)

    venv = fresh_venv(tmp_path, wheel)
    run = tmp_path / "run"  # the working directory: nothing of the checkout is importable
    run.mkdir()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", WHERE],
        cwd=run,
        env=clean_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    site = str(venv.resolve())
    for path in where:
        assert path.startswith(site), f"imported from outside the fresh venv: {path}"
    assert len(where) == len(PACKAGES) + 1, where

    data = tmp_path / "data"
    port = free_port()
    with open(tmp_path / "up.log", "wb") as log:
        proc = subprocess.Popen(
            [str(venv / "bin" / "riverwatch"), "up", "--api-port", str(port), "--for", "30"],
            cwd=run,
            env=clean_env(RIVERWATCH_DATA_DIR=str(data), PYTHONUNBUFFERED="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        score_one(proc, f"http://127.0.0.1:{port}", data / "api-key")
        assert proc.wait(timeout=90) == 0
    except BaseException:
        print((tmp_path / "up.log").read_text(errors="replace")[-5000:])
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Where each package and the dashboard's index.html resolve from, one path a line.
WHERE = f"""
import importlib, importlib.resources
for name in {PACKAGES!r}:
    print(importlib.import_module(name).__file__)
print(importlib.resources.files("riverwatch.api") / "static" / "index.html")
"""


def score_one(proc: subprocess.Popen[bytes], base: str, keyfile: Path) -> None:
    """POST a transaction with the key `up` wrote to the data dir; poll until it is scored.

    The deadlines are generous (a loaded machine starts the children slowly); `up` exiting
    early fails at once.
    """

    def key() -> str | None:
        assert proc.poll() is None, f"riverwatch up exited with {proc.returncode}"
        return keyfile.read_text().strip() if keyfile.is_file() else None

    headers = {"Authorization": f"Bearer {poll(key, 120, 'the API key file')}"}

    def get(path: str) -> httpx.Response | None:
        assert proc.poll() is None, f"riverwatch up exited with {proc.returncode}"
        try:
            return httpx.get(base + path, headers=headers, timeout=5)
        except httpx.HTTPError:
            return None

    poll(lambda: (r := get("/readyz")) is not None and r.status_code == 200, 120, "/readyz")
    tx = {
        "event_id": "wheel-1",
        "timestamp": "2026-03-01T12:00:00Z",
        "card_id": "c-wheel",
        "terminal_id": "t-wheel",
        "amount": 42.0,
    }
    posted = httpx.post(f"{base}/v1/transactions", json=tx, headers=headers, timeout=10)
    assert posted.status_code == 202, posted.text
    scored = poll(
        lambda: (r := get("/v1/scores/wheel-1")) is not None and r.status_code == 200 and r.json(),
        30,
        "the posted transaction's score",
    )
    assert scored["event_id"] == "wheel-1"
    assert scored["decision"] in ("approve", "review", "decline")
    index = get("/")
    assert index is not None and index.status_code == 200 and "<html" in index.text.lower()
