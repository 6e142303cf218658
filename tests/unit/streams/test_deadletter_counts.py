"""``riverwatch_events_total{outcome="deadletter"}`` counts each dead-lettered record once per
delivery, however often its batch is split (records.isolate) or retried after an outage; the
dead-letter records themselves are not duplicated by a split either. The scorer's handler runs
in the scoring loop (streams.batching.BatchLoop), the monitor's scores handler in a faust agent's
guard (streams.guard.Guard); the handlers' Redis work is stubbed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import redis
from prometheus_client import REGISTRY

from riverwatch.core.metrics import BATCH_RETRIES
from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.guard import Guard
from riverwatch.streams.inflight import Ledger
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record
from riverwatch.streams.scorer import Scorer

TX: dict[str, Any] = {
    "timestamp": "2026-01-01T00:00:00Z",
    "card_id": "c1",
    "terminal_id": "t1",
    "amount": 12.5,
}
SCORE: dict[str, Any] = {
    "card_id": "c1",
    "timestamp": "2026-01-01T00:00:00Z",
    "score": 0.1,
    "online_score": 0.1,
    "decision": "approve",
    "model_versions": {},
    "latency_ms": 1.0,
    "scored_at": "2026-01-01T00:00:00Z",
}


def deadletters(topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "riverwatch_events_total", {"topic": topic, "outcome": "deadletter"}
    )
    return value or 0.0


def retries(stage: str) -> float:
    value = REGISTRY.get_sample_value(
        "riverwatch_batch_retries_total", {"stage": stage, "reason": "transient"}
    )
    return value or 0.0


class Faults:
    """The handlers' stubbed work: raises for the event ``poison``; for a batch without it,
    raises an outage while ``outages`` lasts."""

    def __init__(self, outages: int = 0):
        self.outages = outages

    def __call__(self, eids: list[str]) -> None:
        if "poison" in eids:
            raise ValueError("cannot handle")
        if self.outages and eids:
            self.outages -= 1
            raise redis.exceptions.ConnectionError("Redis went away")


def batch(topic: str, fields: dict[str, Any]) -> list[Record]:
    """Unparseable, the poison event, a good event: the split isolates both bad ones."""
    values = [b"not json", orjson.dumps({**fields, "event_id": "poison"})]
    values.append(orjson.dumps({**fields, "event_id": "good"}))
    return [Record(topic, 0, i, b"k", v) for i, v in enumerate(values)]


def scorer(faults: Faults) -> Scorer:
    s = Scorer.__new__(Scorer)
    s.limits, s.t_dead, s.worker = None, "dead", "w1"
    s.rejects = SimpleNamespace(count=lambda *_: 0)

    def score(txs: list[tuple[Record, Any]]) -> list[Out]:
        faults([tx.event_id for _, tx in txs])
        return [Out("scores", None, tx.event_id.encode()) for _, tx in txs]

    s._score = score  # type: ignore[method-assign]
    return s


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def produce(self, topic: str, value: bytes, _key: Any, on_delivery: Any) -> None:
        self.sent.append((topic, value))


def loop(handler: Any, stage: str) -> BatchLoop:
    b = BatchLoop.__new__(BatchLoop)
    b.handler, b.label, b.name, b.t_dead, b.worker = handler, "transactions", stage, "dead", "w1"
    b.on_failed, b.ledger, b.producer = None, Ledger(), Producer()
    return b


def origins(sent: list[tuple[str, bytes]]) -> list[tuple[int, str]]:
    letters = [orjson.loads(v) for t, v in sent if t == "dead"]
    return sorted((d["offset"], d["error"].split(":")[0]) for d in letters)


def test_the_scorer_counts_a_dead_letter_once_when_its_batch_is_split() -> None:
    before = deadletters("transactions")
    b = loop(scorer(Faults()).process, "split")
    assert b._process(batch("transactions", TX))
    assert deadletters("transactions") - before == 2  # the unparseable one, the poison one
    assert origins(b.producer.sent) == [(0, "(record)"), (1, "ValueError")]  # one letter each


def test_the_scorer_counts_a_dead_letter_once_when_its_batch_is_retried_after_an_outage() -> None:
    before, retried = deadletters("transactions"), retries("outage")
    b, records = loop(scorer(Faults(outages=2)).process, "outage"), batch("transactions", TX)
    # what BatchLoop.run does: the batch consumed again after each outage, until handled
    attempts = 1
    while not b._process(records):
        b._retry(
            SimpleNamespace(seek=lambda _: None, commit=lambda **_: None), records, "transient"
        )
        attempts += 1
    assert attempts == 3
    assert retries("outage") - retried == 2  # once per retry of the batch, not per half
    assert deadletters("transactions") - before == 2
    assert origins(b.producer.sent) == [(0, "(record)"), (1, "ValueError")]


def monitor(faults: Faults) -> Monitor:
    m = Monitor.__new__(Monitor)
    m.t_dead, m.worker, m.names = "dead", "w1", SimpleNamespace(monitor=lambda k: k)
    m.limits = None
    m.r = SimpleNamespace(hincrby=lambda *_: 0, set=lambda *_: None)
    m.snapshots = SimpleNamespace(dirty=set())
    m.core = SimpleNamespace(first=0.0, scores=lambda _: None, status=lambda: {})
    m.waiting = SimpleNamespace(take=lambda _: {})  # no label waits for its row

    def rows(eids: list[str], features: bool = True) -> dict[str, dict[str, Any]]:
        faults(eids)
        return {}

    m._rows = rows  # type: ignore[method-assign]
    m._follow_reference = lambda: None  # type: ignore[method-assign]
    m._read_rejects = lambda: {}  # type: ignore[method-assign]
    m.publish = lambda *_: []  # type: ignore[method-assign]
    return m


def test_the_monitor_counts_a_dead_letter_once_when_its_batch_is_split_or_retried() -> None:
    before = deadletters("scores")
    g, m, records = (
        Guard("scores", "scores", "dead", "w1"),
        monitor(Faults()),
        batch("scores", SCORE),
    )
    outs = g.isolated(m.process_scores, records)
    assert deadletters("scores") - before == 2
    assert origins([(o.topic, o.value) for o in outs]) == [(0, "(record)"), (1, "ValueError")]

    # an outage met by the half without the poison record: the whole batch is handled again
    before, m = deadletters("scores"), monitor(Faults(outages=1))
    outs = []
    for _ in range(2):
        try:
            outs = g.isolated(m.process_scores, records)
            break
        except redis.exceptions.ConnectionError:
            continue
    assert deadletters("scores") - before == 2
    assert origins([(o.topic, o.value) for o in outs]) == [(0, "(record)"), (1, "ValueError")]


def test_batch_retries_are_not_counted_by_a_split() -> None:
    before = BATCH_RETRIES.labels(stage="split-only", reason="transient")._value.get()
    b = loop(scorer(Faults()).process, "split-only")
    assert b._process(batch("transactions", TX))
    assert BATCH_RETRIES.labels(stage="split-only", reason="transient")._value.get() == before


def test_the_learner_and_the_forecaster_count_their_rejects_once_not_in_handler_and_loop() -> None:
    from riverwatch.streams.forecasting import ForecastHandler
    from riverwatch.streams.learning import Learner

    learner = Learner.__new__(Learner)
    learner.limits, learner.t_dead, learner.worker = None, "dead", "w1"
    learner.rejects = SimpleNamespace(count=lambda *_: 0)
    learner.check_resets = lambda: []  # type: ignore[method-assign]
    learner.maybe_snapshot = lambda: None  # type: ignore[method-assign]
    before = deadletters("labels")
    outs = Guard("learner", "labels", "dead", "w1").isolated(learner.process, batch("labels", {}))
    assert len(outs) == 3 and deadletters("labels") - before == 3  # no label parses

    fc = ForecastHandler.__new__(ForecastHandler)
    fc.limits, fc.t_dead, fc.worker, fc.touched = None, "dead", "w1", {}
    fc.rejects = SimpleNamespace(count=lambda *_: 0)
    fc._refresh = lambda _: None  # type: ignore[method-assign]
    before = deadletters("transactions")
    b = loop(fc.process, "forecaster")  # the stub loop labels its counts "transactions"
    assert b._process(batch("metrics", {}))
    assert deadletters("transactions") - before == 3
