"""The command line against the real stack: API keys, worker metrics port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from riverwatch.context_parts import redis_config
from riverwatch.core.apikeys import list_keys
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings, to_env
from riverwatch.shell.procs import free_port
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **to_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "riverwatch", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_keys_create_list_revoke(settings: Settings) -> None:
    made = cli(settings, "keys", "create", "--name", "ci-bot", "--scopes", "ingest,read")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("rw_")
    infos = list(
        list_keys(redis_client(redis_config(settings)), Names(settings.topic_prefix)).values()
    )
    assert [(i.name, i.scopes) for i in infos] == [("ci-bot", ("ingest", "read"))]
    listed = cli(settings, "keys", "list")
    assert "ci-bot\tingest,read" in listed.stdout and key not in listed.stdout
    bad = cli(settings, "keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode != 0 and "root" in (bad.stderr + bad.stdout)
    assert "revoked 1 key(s)" in cli(settings, "keys", "revoke", "--name", "ci-bot").stdout


def test_worker_serves_its_own_metrics(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    with running_worker(
        settings.model_copy(update={"worker_metrics_port": port}), tmp_path / "w.log"
    ):
        url = f"http://127.0.0.1:{port}/metrics"
        text = poll(lambda: httpx.get(url).text, 30, "/metrics")
        assert "riverwatch_score_latency_seconds" in text
        # Consumer lag per partition, from librdkafka's statistics (every 2 s); known once the
        # consumer has a position, i.e. after a record.
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        for part in range(settings.partitions):
            tx = {
                "event_id": f"lag{part}",
                "timestamp": 0,
                "card_id": "c",
                "terminal_id": "t",
                "amount": 1.0,
            }
            p.produce(
                Names(settings.topic_prefix).topic("transactions"),
                orjson.dumps(tx),
                partition=part,
            )
        p.flush(10)

        def lags() -> dict[str, float]:
            return {
                ln.split('partition="')[1].split('"')[0]: float(ln.rsplit(" ", 1)[1])
                for ln in httpx.get(url).text.splitlines()
                if ln.startswith("riverwatch_consumer_lag{") and 'topic="transactions"' in ln
            }

        # -1 (unknown) until the consumer has committed a position; then the true lag, which
        # falls to 0 on every partition once the four records are scored.
        drained = {str(p): 0.0 for p in range(settings.partitions)}
        poll(lambda: lags() == drained, 60, "the consumer lag to fall to 0", every=0.5)
        # each batch's cycle (handled and produced), per stage: the four records took >= 1
        cycles = [
            float(ln.rsplit(" ", 1)[1])
            for ln in httpx.get(url).text.splitlines()
            if ln.startswith('riverwatch_batch_seconds_count{stage="scorer"}')
        ]
        assert cycles and cycles[0] >= 1, cycles


def test_simulate_to_file_then_replay_through_the_api_then_status(
    settings: Settings, tmp_path: Path
) -> None:
    from tests.support.apiserver import running_api

    history = tmp_path / "sim.ndjson"
    made = cli(
        settings,
        "simulate",
        "--sink",
        "ndjson",
        "--out",
        str(history),
        "--days",
        "2",
        "--customers",
        "50",
        "--terminals",
        "100",
        "--seed",
        "5",
    )
    assert made.returncode == 0, made.stderr
    lines = history.read_text().splitlines()
    txs = [ln for ln in lines if '"topic":"transactions"' in ln]
    assert txs
    with running_worker(settings, tmp_path / "w.log"), running_api(settings) as api:
        base = str(api.http.base_url).rstrip("/")
        done = cli(settings, "replay", str(history), "--url", base, "--key", api.keys["root"])
        assert done.returncode == 0, done.stderr
        assert f"replayed {len(lines):,} events" in done.stdout
        r = redis_client(redis_config(settings))
        last = orjson_event_id(txs[-1])
        poll(lambda: r.get(Names(settings.topic_prefix).score(last)), 30, "the replay scored")

        def status() -> subprocess.CompletedProcess[str] | None:
            # the monitor (another role of the worker) reads the scores after the scorer
            got = cli(settings, "status")
            return None if "no scored event seen yet" in got.stdout else got

        shown = poll(status, 60, "the monitor's status after its first scored events", every=1.0)
        assert shown.returncode == 0, shown.stderr
        assert "workers alive      1 scoring, 0 helper" in shown.stdout  # one all-roles worker
        monitor = next(ln for ln in shown.stdout.splitlines() if ln.startswith("monitor "))
        assert "warming up" in monitor  # a few simulated days: no reference yet
        scored = next(ln for ln in shown.stdout.splitlines() if ln.startswith("scored"))
        assert f"{len(txs):,}" in scored


def orjson_event_id(line: str) -> str:
    return str(orjson.loads(line)["payload"]["event_id"])


@pytest.mark.parametrize(
    ("beats", "healthy"),
    [
        ({"workers": {"ME:1": "now"}}, True),
        ({"workers": {"ME:1": "old", "ME:7": "now"}}, True),  # restarted: the new pid beats
        ({"workers": {"ME:1": "old"}}, False),  # stale (older than 3 beats)
        ({"workers": {"other-host:1": "now"}}, False),  # another container's beat
        ({"helpers": {"ME:3": "now"}}, True),  # a helper (no scoring role) beats elsewhere
        ({"helpers": {"ME:3": "old"}}, False),
        ({}, False),
    ],
)
def test_healthcheck_worker_reads_this_hosts_heartbeat(
    settings: Settings, beats: dict[str, dict[str, str]], healthy: bool
) -> None:
    """`riverwatch healthcheck worker` (every worker container's probe) against a real Redis."""
    import socket
    import time

    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    at = {"now": time.time(), "old": time.time() - 4 * settings.worker_heartbeat_s}
    for hash_, fields in beats.items():
        key = names.workers() if hash_ == "workers" else names.helpers()
        for who, when in fields.items():
            r.hset(key, who.replace("ME", socket.gethostname()), at[when])
    got = cli(settings, "healthcheck", "worker")
    assert got.returncode == (0 if healthy else 1), got.stdout + got.stderr
    assert got.stdout.strip() == ("worker: alive" if healthy else "worker: not alive")
    r.close()


def test_healthcheck_sees_a_running_worker_and_api(settings: Settings, tmp_path: Path) -> None:
    """A live worker's own heartbeat and a live API's /healthz pass; no API on the port fails;
    a Redis that does not answer fails the worker check without a traceback."""
    from tests.support.apiserver import running_api

    assert cli(settings, "healthcheck", "worker").returncode == 1
    with running_worker(settings, tmp_path / "w.log", roles="alerts"):
        got = cli(settings, "healthcheck", "worker")
        assert got.returncode == 0, got.stdout + got.stderr
    with running_api(settings) as api:
        port = int(str(api.http.base_url).rstrip("/").rsplit(":", 1)[1])
        up = settings.model_copy(update={"api_port": port})
        got = cli(up, "healthcheck", "api")
        assert got.returncode == 0 and got.stdout.strip() == "api: alive", got.stderr
    down = cli(settings.model_copy(update={"api_port": free_port()}), "healthcheck", "api")
    assert down.returncode == 1 and down.stdout.strip() == "api: not alive"
    gone = cli(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}),
        "healthcheck",
        "worker",
    )
    assert gone.returncode == 1 and "Traceback" not in gone.stderr, gone.stderr
