"""The worker's role table wires every role of the one Role enum, in its order."""

from __future__ import annotations

from riverwatch.core.roles import HELPER_PROCESS, SCORER_PROCESS, Role
from riverwatch.streams.app import ROLES


def test_the_role_table_wires_every_role_once_in_the_enums_order() -> None:
    assert list(ROLES) == list(Role)


def test_the_scorer_and_the_helper_processes_run_every_role_once() -> None:
    assert sorted(SCORER_PROCESS + HELPER_PROCESS) == sorted(Role)


def test_every_role_module_has_a_register() -> None:
    import importlib

    for role, module in ROLES.items():
        assert callable(importlib.import_module(module).register), role


# A scorer process (scoring, learning) built in a fresh interpreter: which modules it loaded.
_SCORER = """
import sys, tempfile
from riverwatch.context import Context
from riverwatch.core.settings import Settings
from riverwatch.streams.app import create_app

s = Settings(kafka_bootstrap="127.0.0.1:1", redis_url="redis://127.0.0.1:1/0",
             worker_roles="scoring,learning", data_dir=tempfile.mkdtemp())
create_app(Context.from_settings(s))
print(" ".join(sorted(sys.modules)))
"""


def test_a_scorer_process_loads_no_helper_roles_code() -> None:
    """Roles are imported only where they run: a scorer does not carry the monitor's, the
    forecaster's, the trainer's or the alert dispatcher's modules (or Evidently)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _SCORER], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(out.stdout.split())
    assert "riverwatch.streams.roles.scoring" in loaded  # the probe saw the scorer's imports
    for helper in (
        "riverwatch.streams.monitor.agents",
        "riverwatch.streams.roles.forecasting",
        "riverwatch.streams.roles.training",
        "riverwatch.streams.roles.alerts",
        "evidently",
    ):
        assert helper not in loaded, helper
