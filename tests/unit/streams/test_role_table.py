"""The worker's role table wires every role of the one Role enum, in its order."""

from __future__ import annotations

from riverwatch.core.roles import HELPER_PROCESS, SCORER_PROCESS, Role
from riverwatch.streams.app import ROLES


def test_the_role_table_wires_every_role_once_in_the_enums_order() -> None:
    assert list(ROLES) == list(Role)


def test_the_scorer_and_the_helper_processes_run_every_role_once() -> None:
    assert sorted(SCORER_PROCESS + HELPER_PROCESS) == sorted(Role)
