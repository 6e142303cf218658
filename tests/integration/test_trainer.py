"""The trainer agent in a real worker: control requests in, outcomes, alerts and models out."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.outputs import Alert
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.shell.procs import children
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.registry import Registry
from riverwatch.streams.trainer import SCHEDULE_CHECK_S
from tests.support.builders import labeled_frame
from tests.support.topics import Topics, ask
from tests.support.workers import running_worker

pytestmark = pytest.mark.integration


def test_retrain_promotes_a_first_challenger_but_not_its_twin(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    r = redis_client(redis_config(settings))
    registry = Registry(r, Names(settings.topic_prefix), settings.data_dir)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        empty = ask(settings, "retrain")
        failed = topics.wait("control", {"request_id": empty, "status": "failed"})
        assert failed["reason"] == "the offline store has no labeled rows yet"

        store = OfflineStore(settings.data_dir, writer="seed")
        store.append(labeled_frame().to_dict("records"))  # 45 simulated days, every label in
        store.close()
        first = ask(settings, "retrain")
        done = topics.wait("control", {"request_id": first, "status": "done"})
        assert done["target"] == "batch-1" and done["details"]["promoted"] is True
        assert done["reason"].startswith("batch-1 promoted to champion: no champion yet")
        assert done["details"]["counts"]["train_frauds"] > 0
        fit = done["details"]["fit"]  # fitted in a child process of its own, which has ended
        assert fit["pid"] not in (worker.pid, os.getpid()) and fit["rows_read"] > 0
        assert fit["pid"] not in children(worker.pid)
        champion = registry.champion()
        assert champion is not None and champion.name == "batch-1"
        assert champion.metrics["auc"] is not None and champion.metrics["auc"] > 0.7
        assert champion.holdout_end == done["details"]["windows"]["holdout_end"]
        alert = Alert.model_validate(topics.wait("alerts", {"alert_id": f"retrain-{first}"}))
        assert alert.kind == "retrain" and alert.severity == "info" and alert.subject == "batch-1"

        # the same data again: the champion (fitted on the hold-out too, RIVERWATCH_TRAIN_REFIT)
        # has seen every label the challenger has: kept
        second = ask(settings, "retrain")
        again = topics.wait("control", {"request_id": second, "status": "done"})
        assert again["target"] == "batch-2" and again["details"]["promoted"] is False
        assert "no newer label to retrain on, kept" in again["reason"]
        assert again["details"]["counts"]["refit_rows"] > again["details"]["counts"]["train_rows"]
        assert registry.champion().name == "batch-1"  # type: ignore[union-attr]
        assert registry.challenger().name == "batch-2"  # type: ignore[union-attr]

        # promote / rollback requests, good and bad, and a record that is not a request
        p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        p.produce(topics.names.topic("control"), b'{"action": "retrain"}')
        assert p.flush(10) == 0
        dead = topics.wait("deadletter", {"origin_topic": topics.names.topic("control")})
        assert "request_id" in dead["error"]
        unknown = ask(settings, "promote", "batch-99")
        failed = topics.wait("control", {"request_id": unknown, "status": "failed"})
        assert failed["reason"] == "no model version named 'batch-99'"
        warn = topics.wait("alerts", {"alert_id": f"promote-{unknown}"})
        assert warn["severity"] == "warning"
        promoted = ask(settings, "promote", "batch-2")
        assert topics.wait("control", {"request_id": promoted, "status": "done"})
        assert registry.champion().name == "batch-2"  # type: ignore[union-attr]
        back = ask(settings, "rollback")
        assert topics.wait("control", {"request_id": back, "status": "done"})["target"] == "batch-1"
        assert registry.champion().name == "batch-1"  # type: ignore[union-attr]
        # outcomes (status done/failed) on the same topic were not taken for new requests
        handled = [c for c in topics.seen["control"] if c.get("status") in ("done", "failed")]
        assert len(handled) == 6
    r.close()


def test_a_monitor_request_that_comes_while_busy_waits_and_the_newest_runs(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    # The monitor asks once (a follow-up retrain is due once) and never again: a request of
    # its that came while another retrain ran was answered "try later" and lost.
    store = OfflineStore(settings.data_dir, writer="seed")
    store.append(labeled_frame().to_dict("records"))
    store.close()
    with running_worker(settings, tmp_path / "worker.log"):
        client = ask(settings, "retrain")
        refused = ask(settings, "retrain")  # a client's: fails at once, it may ask again
        older = ask(settings, "retrain", source="monitor")
        newer = ask(settings, "retrain", source="monitor")
        busy = topics.wait("control", {"request_id": refused, "status": "failed"})
        assert busy["reason"].startswith("a retrain is already running")
        gone = topics.wait("control", {"request_id": older, "status": "failed"})
        assert gone["reason"] == f"superseded by the monitor's newer request {newer}"
        assert topics.wait("control", {"request_id": client, "status": "done"}, timeout=120)
        ran = topics.wait("control", {"request_id": newer, "status": "done"}, timeout=120)
        assert ran["target"] == "batch-2"  # trained after the client's batch-1


def test_the_trainer_retrains_on_its_own_once_per_day_of_matured_labels(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    s = settings.model_copy(update={"retrain_every_days": 1.0})
    store = OfflineStore(s.data_dir, writer="seed")
    store.append(labeled_frame().to_dict("records"))
    store.close()
    latest = OfflineStore(s.data_dir, writer="check").latest_epoch()
    assert latest is not None
    period = int((latest + s.label_delay_days * 86_400) // 86_400)
    with running_worker(s, tmp_path / "worker.log"):
        done = topics.wait("control", {"request_id": f"scheduled-{period}"}, timeout=240)
        assert done["status"] == "done" and done["details"]["promoted"] is True, done
        assert done["details"]["now"] == latest + s.label_delay_days * 86_400
        # no label has matured since: no second scheduled retrain (the period is claimed)
        deadline = time.monotonic() + 2.5 * SCHEDULE_CHECK_S
        while time.monotonic() < deadline:
            with pytest.raises(AssertionError):
                topics.wait("control", {"request_id": f"scheduled-{period + 1}"}, timeout=1)
        seen = topics.seen["control"]
        scheduled = [c for c in seen if str(c.get("request_id")).startswith("scheduled")]
        assert [c["status"] for c in scheduled] == ["done"], scheduled  # only its outcome


def test_the_train_command_trains_registers_and_prints_the_table(settings: Settings) -> None:
    from typer.testing import CliRunner

    from riverwatch.core.settings import to_env
    from riverwatch.shell.cli import app

    runner = CliRunner()
    env = to_env(settings)
    nothing = runner.invoke(app, ["train"], env=env)
    assert nothing.exit_code == 1
    assert "not trained: the offline store has no labeled rows yet" in nothing.output

    store = OfflineStore(settings.data_dir, writer="seed")
    store.append(labeled_frame().to_dict("records"))
    store.close()
    first = runner.invoke(app, ["train", "--now", "2026-02-22T00:00:00"], env=env)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert any("train 2026-01-18 00:00..2026-02-08 00:00, hold-out 2026-02-08" in s for s in lines)
    assert any(s.startswith("rows: train ") and "frauds), hold-out " in s for s in lines)
    row = next(s for s in lines if s.startswith("challenger batch-1"))
    assert len(row.split()) == 5 and all(0 < float(v) <= 1 for v in row.split()[2:])
    assert lines[-1].startswith("batch-1 promoted to champion: no champion yet")

    second = runner.invoke(app, ["train", "--now", "2026-02-22T00:00:00"], env=env)
    assert second.exit_code == 0, second.output
    assert any(s.startswith("champion batch-1") for s in second.output.splitlines())
    assert second.output.splitlines()[-1].startswith("batch-2 kept as challenger")
    r = redis_client(redis_config(settings))
    registry = Registry(r, Names(settings.topic_prefix), settings.data_dir)
    assert registry.champion().name == "batch-1"  # type: ignore[union-attr]
    r.close()


def test_a_retrain_reads_at_most_train_max_rows_the_newest_days_first(settings: Settings) -> None:
    """RIVERWATCH_TRAIN_MAX_ROWS bounds what a retrain reads, counted from the files' footers
    before any row is read: the training window starts later, the hold-out is whole; a
    hold-out that alone holds more is refused."""
    from riverwatch.context import Context
    from riverwatch.models.promotion import windows
    from riverwatch.shell.train import parse_now, run_train

    store = OfflineStore(settings.data_dir, writer="seed")
    store.append(labeled_frame().to_dict("records"))
    store.close()
    now = "2026-02-22T00:00:00"  # train 2026-01-18..02-08, hold-out 02-08..02-15 (whole days)
    at = parse_now(now)
    assert at is not None
    w = windows(at, Context.from_settings(settings).training)
    days = store.day_rows(w.train_start, w.holdout_end)
    hold = sum(n for d, n in days if d >= w.holdout_start)
    train = [n for d, n in days if d < w.holdout_start]
    assert len(train) == 21 and hold == len(store.read(w.holdout_start, w.holdout_end)) > 0

    out: list[str] = []
    cap = hold + sum(train[-5:]) + train[-6] // 2  # room for the last 5 training days only
    assert run_train(settings.model_copy(update={"train_max_rows": cap}), now, out.append), out
    assert any(
        "the training window starts at 2026-02-03 00:00 instead of 2026-01-18 00:00: "
        f"{hold + sum(train[-5:]):,} rows from there, RIVERWATCH_TRAIN_MAX_ROWS is {cap:,}" in s
        for s in out
    ), out
    assert f"rows: train {sum(train[-5:]):,} (" in "\n".join(out)
    assert f"hold-out {hold:,} (" in "\n".join(out)
    r = redis_client(redis_config(settings))
    champion = Registry(r, Names(settings.topic_prefix), settings.data_dir).champion()
    assert champion is not None and champion.data_start == w.train_start + 16 * 86_400
    r.close()

    out = []
    refused = settings.model_copy(update={"train_max_rows": hold - 1})
    assert not run_train(refused, now, out.append)
    assert out[-1] == (
        f"not trained: the hold-out's days hold {hold:,} labeled rows, more than "
        f"RIVERWATCH_TRAIN_MAX_ROWS ({hold - 1:,}); no row read"
    )
