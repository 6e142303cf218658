"""Fault injection under `riverwatch up`: kill -9 Valkey and the broker, a crash-looping child,
SIGTERM and a restart on the same data dir, and the CLI finding (or not) the running system.

Real processes only; every wait is bounded. The stack's addresses and the children's pids come
from the files `up` keeps in its data dir (endpoints.json, supervisor.json).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import admin
from riverwatch.core.names import Names
from riverwatch.models.batch import train_batch
from riverwatch.shell.procs import free_port
from riverwatch.stores.registry import Registry
from tests.support.up import RECOVER_S, Up, clean_env, ready, running_up
from tests.support.workers import poll

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.chaos,
    pytest.mark.timeout(1200),  # two or three `up` starts on a loaded 2-core machine
]


def post_tx(up: Up, event_id: str) -> int:
    tx = {
        "event_id": event_id,
        "timestamp": "2026-03-01T12:00:00Z",
        "card_id": "c-chaos",
        "terminal_id": "t-chaos",
        "amount": 12.5,
    }
    try:
        return httpx.post(
            f"{up.base}/v1/transactions", json=tx, headers=up.h, timeout=30
        ).status_code
    except httpx.HTTPError:
        return 0


def score(up: Up, event_id: str) -> dict[str, Any] | None:
    r = httpx.get(f"{up.base}/v1/scores/{event_id}", headers=up.h, timeout=10)
    return r.json() if r.status_code == 200 else None


def accepted_and_scored(up: Up, event_id: str) -> dict[str, Any]:
    """POST until a 202 (the system recovers by itself), then wait for the score."""
    poll(lambda: post_tx(up, event_id) == 202, RECOVER_S, f"a 202 for {event_id}", every=1)
    return poll(lambda: score(up, event_id), RECOVER_S, f"the score of {event_id}", every=0.5)


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `riverwatch` command as a user in a second terminal runs it: no RIVERWATCH_* but the
    data dir."""
    return subprocess.run(
        [sys.executable, "-m", "riverwatch", *args],
        env=clean_env(data),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_killed_valkey_and_broker_come_back_by_themselves(tmp_path: Path) -> None:
    """kill -9 Valkey: restarted from its AOF (same key, same model version); kill -9 the
    broker: restarted, every topic there again, POST answers 202 and is scored."""
    with running_up(tmp_path / "data", RIVERWATCH_SNAPSHOT_EVERY_S="0.5") as up:
        poll(lambda: ready(up), RECOVER_S, "readyz", every=0.5)
        first = accepted_and_scored(up, "before")
        # A label makes the online model learn and publish a version to recover.
        label = {"event_id": "before", "label": 1, "timestamp": "2026-03-01T12:00:01Z"}
        assert httpx.post(f"{up.base}/v1/labels", json=label, headers=up.h).status_code == 202
        names = Names()
        r = up.redis()
        version = poll(lambda: r.get(names.model_version("online")), 120, "an online version")
        r.execute_command("WAITAOF", 1, 0, 5000)  # the version is on disk before the kill
        r.close()
        assert first["model_versions"]["online"] == "0"
        # The scorer serves the new version before the kill: it looks for one every second, so
        # a transaction scored within a second of Valkey's restart may still be scored with
        # the version it served before the kill, which is not what this test is about.
        tries = iter(range(1000))

        def serves_it() -> bool:
            got = accepted_and_scored(up, f"served-{next(tries)}")
            return bool(got["model_versions"]["online"] == version.decode())

        poll(serves_it, RECOVER_S, "the scorer serving the new online version", every=0.5)

        t0 = time.monotonic()
        old = up.kill_child("valkey")
        up.restarted("valkey", old)
        again = accepted_and_scored(up, "after-valkey")  # the same key: kept by the AOF
        print(f"kill -9 Valkey -> a new transaction scored in {time.monotonic() - t0:.1f} s")
        r = up.redis()
        assert r.get(names.model_version("online")) == version
        r.close()
        assert again["model_versions"]["online"] == version.decode()

        t0 = time.monotonic()
        old = up.kill_child("broker")
        up.restarted("broker", old)
        accepted_and_scored(up, "after-broker")
        print(f"kill -9 broker -> a new transaction scored in {time.monotonic() - t0:.1f} s")
        topics = set(admin(kafka_config(up.settings())).list_topics(timeout=10).topics)
        assert set(names.all_topics()) <= topics
        poll(lambda: ready(up), RECOVER_S, "readyz after the broker's restart", every=0.5)

        # A killed scorer stops counting at once, not when its heartbeat ages out.
        old = up.kill_child("worker-0")
        poll(lambda: up.children()["worker-0"]["pid"] != old, 30, "up to see the exit", every=0.1)
        unready = httpx.get(f"{up.base}/readyz", timeout=10)
        assert unready.status_code == 503 and unready.json()["checks"]["workers"] == 0
        assert unready.json()["checks"]["partitions"]["unowned"] == [0, 1, 2, 3]
        poll(lambda: ready(up), RECOVER_S, "readyz after the scorer's restart", every=0.5)
        assert up.proc.poll() is None


def test_killed_apache_kafka_loses_no_accepted_transaction(tmp_path: Path) -> None:
    """`up --broker kafka`: transactions answered 202 just before a kill -9 of the broker are
    all scored after `up` restarts it on its log (Tansu, in memory, would lose them)."""
    with running_up(tmp_path / "data", "--broker", "kafka") as up:
        poll(lambda: ready(up), RECOVER_S, "readyz", every=0.5)
        accepted_and_scored(up, "warm")
        # The scorer is paused, so what is accepted now is still only on the broker's log.
        scorer = int(up.children()["worker-0"]["pid"])
        os.kill(scorer, signal.SIGSTOP)
        try:
            accepted = [f"k{i}" for i in range(20) if post_tx(up, f"k{i}") == 202]
            assert accepted, "no transaction accepted before the kill"
            assert all(score(up, e) is None for e in accepted)
            old = up.kill_child("broker")
            up.restarted("broker", old)
        finally:
            os.kill(scorer, signal.SIGCONT)
        accepted_and_scored(up, "after-kafka")
        for event_id in accepted:
            poll(lambda e=event_id: score(up, e), RECOVER_S, f"the score of {event_id}")
        assert up.proc.poll() is None


def test_a_crash_looping_child_is_reported_and_the_others_keep_running(tmp_path: Path) -> None:
    """Seven exits of the helper (more than the budget of 3): reported as crash-looping in
    /readyz, `riverwatch status` and a system alert; up, the API and scoring go on."""
    budget = {
        "RIVERWATCH_SUPERVISE_MAX_RESTARTS": "3",
        "RIVERWATCH_SUPERVISE_WINDOW_S": "600",
        "RIVERWATCH_SUPERVISE_BACKOFF_MAX_S": "2",
    }
    with running_up(tmp_path / "data", **budget) as up:
        poll(lambda: ready(up), RECOVER_S, "readyz", every=0.5)
        pid = up.kill_child("helper")
        for _ in range(6):
            pid = up.restarted("helper", pid)
            os.kill(pid, signal.SIGKILL)

        def helper_state() -> dict[str, Any]:
            body = httpx.get(f"{up.base}/readyz", timeout=10).json()
            return dict(body["checks"].get("children", {}).get("helper", {}))

        looping = poll(
            lambda: (h := helper_state()).get("exits_in_window") == 7 and h,
            60,
            "the helper's seven exits in /readyz",
            every=0.2,
        )
        assert looping["crash_looping"] is True
        assert up.proc.poll() is None  # up goes on
        accepted_and_scored(up, "while-looping")  # so do the broker, Valkey, scorer and API
        status = cli(up.data, "status")
        assert status.returncode == 0 and "helper" in status.stdout
        assert "CRASH-LOOPING" in status.stdout, status.stdout
        # The helper (the alert dispatcher) runs again after the backoff and stores the alert.
        alerts = poll(
            lambda: httpx.get(
                f"{up.base}/v1/alerts", params={"kind": "system"}, headers=up.h, timeout=10
            ).json()["items"],
            RECOVER_S,
            "the system alert about the helper",
            every=1,
        )
        alert = alerts[0]
        assert alert["subject"] == "helper" and "crash-looping" in alert["message"]


def test_sigterm_and_restart_keep_keys_subscriptions_and_registry(tmp_path: Path) -> None:
    """SIGTERM `up`, start it again on the same data dir: the API keys (its own and one made
    with the CLI), a subscription and the registry with its champion are still there. The CLI
    finds the running `up` with no variables set, and says when nothing runs."""
    data = tmp_path / "data"
    nothing = cli(data, "status")
    assert nothing.returncode == 1 and "nothing running" in nothing.stderr
    hooks = {"RIVERWATCH_WEBHOOK_ALLOW_LOOPBACK": "true"}  # no DNS here; loopback only
    with running_up(data, **hooks) as up:
        poll(lambda: ready(up), RECOVER_S, "readyz", every=0.5)
        status = cli(data, "status")
        assert status.returncode == 0 and "workers alive" in status.stdout, status.stderr
        second = cli(data, "up", "--api-port", str(free_port()))
        assert second.returncode == 1 and "already running" in second.stderr
        made = cli(data, "keys", "create", "--name", "ops", "--scopes", "read")
        assert made.returncode == 0, made.stderr
        ops_key = made.stdout.strip()
        sub = httpx.post(
            f"{up.base}/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=up.h
        )
        assert sub.status_code == 201
        reg = Registry(up.redis(), Names(), data)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 2))
        model = train_batch(X, (X[:, 0] > 1.0).astype(int), ("a", "b"), max_iter=5)
        name = reg.register(
            model,
            data_window=(0.0, 1.0),
            holdout_window=(1.0, 2.0),
            metrics={"ap": 0.5},
            features=("a", "b"),
        ).name
        reg.promote(name, "chaos test")
        first_key = up.key
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(120) == 0
    assert not (data / "endpoints.json").exists()
    nothing = cli(data, "keys", "list")
    assert nothing.returncode == 1 and "nothing running" in nothing.stderr

    with running_up(data, **hooks) as up:
        assert up.key == first_key  # the development key Valkey kept is used again
        ops = {"Authorization": f"Bearer {ops_key}"}
        assert httpx.get(f"{up.base}/v1/alerts", headers=ops).status_code == 200
        subs = httpx.get(f"{up.base}/v1/subscriptions", headers=up.h).json()
        assert sub.json()["id"] in [s["id"] for s in subs]
        models = Registry(up.redis(), Names(), data)
        champion = models.champion()
        assert champion is not None and champion.name == name
        listed = cli(data, "keys", "list")
        assert listed.returncode == 0 and "ops\tread" in listed.stdout
