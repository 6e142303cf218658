"""A worker asked to stop while its broker is gone still exits (bounded shutdown)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import ensure_topics
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.children import HELPER_ROLES
from riverwatch.shell.embedded import EmbeddedStack
from tests.support import TEST_BROKER
from tests.support.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_helper_stops_when_its_broker_died_first(settings: Settings, tmp_path: Path) -> None:
    """``up`` killed with SIGKILL: the broker dies and every child gets SIGTERM at once
    (PR_SET_PDEATHSIG). faust's stop then waited on the dead broker for good in about half
    of the runs (3 of 3 on Apache Kafka before riverwatch.shell.stopping); the worker must exit
    anyway, within its shutdown grace."""
    private = EmbeddedStack(tmp_path / "broker", redis=False, broker=TEST_BROKER).start()
    s = settings.model_copy(
        update={"kafka_bootstrap": private.bootstrap, "worker_stop_grace_s": 5.0}
    )
    ensure_topics(kafka_config(s), Names(s.topic_prefix))
    try:
        with running_worker(s, tmp_path / "helper.log", HELPER_ROLES) as proc:
            broker = private.procs["kafka"]
            os.kill(broker.pid, signal.SIGKILL)
            broker.wait(10)
            proc.send_signal(signal.SIGTERM)
            try:  # a bound on the wait, far above the grace: stopped cleanly or forced
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pytest.fail("the worker did not exit within 60 s of SIGTERM without its broker")
    finally:
        private.stop()
