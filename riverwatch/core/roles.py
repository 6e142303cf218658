"""The worker's roles, defined once: the settings (``RIVERWATCH_WORKER_ROLES``), the role
table (streams/app.py ``ROLES``) and the shell's process layout all name them from here.

A :class:`~enum.StrEnum`, so a role is its name wherever it is written (an environment
variable, ``--roles``, a log line, a consumer group).

>>> [str(r) for r in Role]
['scoring', 'learning', 'alerts', 'forecasting', 'monitoring', 'training']
>>> Role("scoring") == "scoring"
True
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a worker process may run; the order is the order the roles are wired in."""

    SCORING = "scoring"
    LEARNING = "learning"
    ALERTS = "alerts"
    FORECASTING = "forecasting"
    MONITORING = "monitoring"
    TRAINING = "training"


# `riverwatch up`, compose and the manifests run the scorers (with the label learner) apart
# from one helper process with the CPU-heavy rest (README, "worker").
SCORER_PROCESS: tuple[Role, ...] = (Role.SCORING, Role.LEARNING)
HELPER_PROCESS: tuple[Role, ...] = (Role.ALERTS, Role.FORECASTING, Role.MONITORING, Role.TRAINING)
