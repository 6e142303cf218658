"""The simulators: contracts, determinism, fraud scenarios, hooks, pacing and sinks (no broker)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from riverwatch.context import Context
from riverwatch.core.events import Label, MetricPoint, Transaction, parse_event
from riverwatch.core.settings import Settings
from riverwatch.simulator import (
    GroupBias,
    HttpSink,
    KafkaSink,
    NdjsonSink,
    SeriesConfig,
    SeriesSimulator,
    SimConfig,
    SimEvent,
    SinkError,
    TransactionSimulator,
    merge,
    paced,
    paced_batches,
    pump,
    read_ndjson,
)

DAY = 86_400
START = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = {"n_customers": 500, "n_terminals": 1000, "n_days": 40}


def _run(**overrides: object) -> tuple[TransactionSimulator, list[SimEvent]]:
    sim = TransactionSimulator(SimConfig(**{**SMALL, **overrides}))  # type: ignore[arg-type]
    return sim, list(sim.events())


def _txs(events: list[SimEvent]) -> list[SimEvent]:
    return [e for e in events if e.topic == "transactions"]


@pytest.fixture(scope="module")
def base() -> tuple[TransactionSimulator, list[SimEvent]]:
    return _run(seed=0)


def test_same_seed_same_events_and_another_seed_differs() -> None:
    small = {"n_customers": 100, "n_terminals": 200, "n_days": 9, "label_delay_days": 2}
    first = list(TransactionSimulator(SimConfig(seed=7, **small)).events())  # type: ignore[arg-type]
    sim = TransactionSimulator(SimConfig(seed=7, **small))  # type: ignore[arg-type]
    assert list(sim.events()) == first
    assert list(sim.events()) == first  # events() restarts the simulation
    other = list(TransactionSimulator(SimConfig(seed=8, **small)).events())  # type: ignore[arg-type]
    assert [e.payload for e in other] != [e.payload for e in first]
    assert first[0].payload["event_id"] == "tx-7-0"


def test_every_payload_matches_its_contract_and_hides_the_truth(base) -> None:
    _, events = base
    models = {"transactions": Transaction, "labels": Label}
    for ev in events:
        parsed = parse_event(models[ev.topic], ev.payload)
        assert parsed.epoch == ev.at
        assert "fraud" not in ev.payload and "scenario" not in ev.payload
    tx = _txs(events)
    assert len({e.payload["event_id"] for e in tx}) == len(tx)
    assert all(e.key == e.payload["card_id"] for e in tx)
    sample = tx[0].payload
    assert set(sample["groups"]) == {"age_band", "region"}
    assert sample["channel"] in {"pos", "online"}
    assert round(sample["amount"], 2) == sample["amount"]


def test_events_are_time_ordered_and_legit_times_cluster_at_noon(base) -> None:
    _, events = base
    ats = np.array([e.at for e in events])
    assert np.all(np.diff(ats) >= 0)
    legit = np.array([e.at for e in _txs(events) if not e.fraud])
    hours = (legit % DAY) / 3600
    assert 11 < hours.mean() < 13
    # Normal(noon, 20,000 s) clipped to the day: about 19% of payments before 5:00 or after 19:00.
    assert 0.15 < ((hours < 5) | (hours > 19)).mean() < 0.23


def test_labels_come_exactly_the_delay_later_and_cover_every_fraud(base) -> None:
    _, events = base
    tx = {e.payload["event_id"]: e for e in _txs(events)}
    labels = [e for e in events if e.topic == "labels"]
    assert len(labels) == len(tx)  # legit_label_share = 1.0 and the run's tail is drained
    for lab in labels:
        origin = tx[lab.key]
        assert lab.at == origin.at + 7 * DAY
        assert lab.payload["label"] == int(bool(origin.fraud)) and lab.fraud == origin.fraud
        assert lab.payload["source"] == "simulator"


def test_legit_label_share_zero_labels_only_frauds() -> None:
    _, events = _run(seed=3, n_days=20, legit_label_share=0.0, label_delay_days=0.5)
    frauds = {e.payload["event_id"] for e in _txs(events) if e.fraud}
    labels = [e for e in events if e.topic == "labels"]
    assert frauds and {e.key for e in labels} == frauds
    seen: set[str] = set()
    for ev in events:  # a label never precedes its transaction
        if ev.topic == "transactions":
            seen.add(ev.payload["event_id"])
        else:
            assert ev.key in seen


def test_fraud_rate_and_scenario_one(base) -> None:
    _, events = base
    tx = _txs(events)
    rate = sum(bool(e.fraud) for e in tx) / len(tx)
    assert 0.005 <= rate <= 0.015, rate
    assert {e.scenario for e in tx} == {0, 1, 2, 3}
    assert all(e.fraud for e in tx if e.payload["amount"] > 220)
    assert all(e.payload["amount"] > 220 for e in tx if e.scenario == 1)
    per_day = len(tx) / SMALL["n_days"]
    assert 800 < per_day < 1200  # ~2 a day per customer, Handbook density


def test_drift_adds_a_new_fraud_pattern_from_drift_day(base) -> None:
    _, before = base
    _, events = _run(seed=0, drift_day=20)
    tx = _txs(events)
    start = START.timestamp()
    new = [e for e in tx if e.scenario == 4]
    assert new and min(e.at for e in new) >= start + 20 * DAY
    for e in new:
        assert e.fraud and e.payload["channel"] == "online" and e.payload["amount"] <= 5
        assert e.payload["merchant_category"] == "digital_goods" and (e.at % DAY) < 6 * 3600
    # The hook adds fraud; it does not reshuffle the legitimate traffic.
    assert Counter(e.scenario for e in _txs(before)) == Counter(
        e.scenario for e in tx if e.scenario != 4
    )
    late = [e for e in tx if e.at >= start + 20 * DAY]
    early = [e for e in tx if e.at < start + 20 * DAY]
    assert sum(bool(e.fraud) for e in late) / len(late) > 1.5 * sum(
        bool(e.fraud) for e in early
    ) / len(early)


def _false_positive_rates(sim: TransactionSimulator, events: list[SimEvent]) -> tuple[float, float]:
    """FPR of the rule "amount > 2x the customer's mean" for 65+ and for everyone else."""
    mean = sim.population.mean_amount
    flagged: dict[bool, list[bool]] = {True: [], False: []}
    for e in _txs(events):
        if not e.fraud:
            customer = int(e.payload["customer_id"].split("-")[1])
            in_group = e.payload["groups"]["age_band"] == "65+"
            flagged[in_group].append(e.payload["amount"] > 2 * mean[customer])
    return float(np.mean(flagged[True])), float(np.mean(flagged[False]))


def test_bias_hook_gives_the_named_group_a_false_positive_gap(base) -> None:
    group_fpr, other_fpr = _false_positive_rates(*base)
    assert abs(group_fpr - other_fpr) < 0.02  # no bias: the rule treats groups alike
    sim, events = _run(seed=0, bias=GroupBias(attribute="age_band", group="65+"))
    group_fpr, other_fpr = _false_positive_rates(sim, events)
    assert group_fpr > other_fpr + 0.05
    # Spiked payments stay legitimate under scenario 1, and the fraud itself is unchanged.
    assert all(e.fraud for e in _txs(events) if e.payload["amount"] > 220)
    assert [e.fraud for e in _txs(events)] == [e.fraud for e in _txs(base[1])]


def test_bias_mislabel_share_flips_labels_not_truth() -> None:
    bias = GroupBias(attribute="region", group="north", spike_share=0.0, mislabel_share=0.5)
    _, events = _run(seed=1, n_days=10, bias=bias)
    labels = [e for e in events if e.topic == "labels" and not e.fraud]
    in_north = _north(events)
    north = [e.payload["label"] for e in labels if e.key in in_north]
    rest = [e.payload["label"] for e in labels if e.key not in in_north]
    assert 0.4 < np.mean(north) < 0.6 and sum(rest) == 0
    with pytest.raises(ValueError, match="unknown region"):
        TransactionSimulator(SimConfig(bias=GroupBias(attribute="region", group="up")))


def _north(events: list[SimEvent]) -> set[str]:
    return {e.payload["event_id"] for e in _txs(events) if e.payload["groups"]["region"] == "north"}


def test_series_flags_exactly_the_injected_anomalies() -> None:
    cfg = SeriesConfig(
        series_id="s1",
        seed=5,
        n_points=3000,
        daily_amplitude=0,
        weekly_amplitude=0,
        noise_sd=1.0,
        anomaly_prob=0.005,
        anomaly_at=(START + timedelta(minutes=100),),
        anomaly_magnitude=8,
        anomaly_kind="spike",
    )
    events = list(SeriesSimulator(cfg).events())
    assert len(events) == 3000 and events[100].anomaly
    assert all(b.at - a.at == 60 for a, b in itertools.pairwise(events))
    for e in events:
        point = parse_event(MetricPoint, e.payload)
        assert e.key == "s1" and point.epoch == e.at
        assert (point.value - 100 > 5) == e.anomaly
    assert 5 < sum(bool(e.anomaly) for e in events) < 40
    endless = SeriesSimulator(SeriesConfig(series_id="s1", seed=5, anomaly_prob=0.005))
    prefix = [e for _, e in zip(range(1500), endless.events(), strict=False)]
    assert prefix == list(
        SeriesSimulator(
            SeriesConfig(series_id="s1", seed=5, n_points=1500, anomaly_prob=0.005)
        ).events()
    )


def test_series_seasonality_peaks_in_the_afternoon() -> None:
    cfg = SeriesConfig(n_points=24 * 60, noise_sd=0, weekly_amplitude=0, trend_per_day=0)
    values = [e.payload["value"] for e in SeriesSimulator(cfg).events()]
    assert values[14 * 60] == pytest.approx(120) and values[2 * 60] == pytest.approx(80)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _ev(at: float, key: str = "k") -> SimEvent:
    return SimEvent(at, "metrics", key, {"series_id": key, "timestamp": at, "value": 0.0})


def test_paced_maps_simulated_time_onto_the_clock() -> None:
    clock = FakeClock()
    # One simulated day per real minute: 1440 simulated seconds per real second.
    events = [_ev(0), _ev(1440), _ev(1440), _ev(4320)]
    emitted = [(e.at, clock.now) for e in paced(events, 1.0, clock=clock, sleep=clock.sleep)]
    assert emitted == [(0, 1000.0), (1440, 1001.0), (1440, 1001.0), (4320, 1003.0)]
    clock.now += 10  # a slow consumer catches up without sleeping
    assert list(paced([_ev(0), _ev(1)], None, clock=clock, sleep=clock.sleep)) == [_ev(0), _ev(1)]
    assert clock.sleeps == [1.0, 2.0]
    with pytest.raises(ValueError):
        list(paced(events, 0, clock=clock, sleep=clock.sleep))


def test_paced_batches_hand_over_what_is_due_and_pump_sends_it() -> None:
    clock = FakeClock()
    events = [_ev(0), _ev(0), _ev(10), _ev(1440), _ev(1440), _ev(1440)]
    batches = list(paced_batches(events, 1.0, max_batch=2, clock=clock, sleep=clock.sleep))
    assert [[e.at for e in b] for b in batches] == [[0, 0], [10], [1440, 1440], [1440]]
    assert clock.now == 1001.0
    assert [len(b) for b in paced_batches(events, None, max_batch=4)] == [4, 2]

    class ListSink:
        def __init__(self) -> None:
            self.batches: list[list[SimEvent]] = []

        def send(self, batch: list[SimEvent]) -> None:
            self.batches.append(batch)

        def close(self) -> None:
            pass

    sink = ListSink()
    assert pump(iter(events), sink, max_batch=3, limit=4) == 4  # unpaced by default
    assert [len(b) for b in sink.batches] == [3, 1]


def test_merge_interleaves_streams_by_time() -> None:
    merged = list(merge([_ev(0, "a"), _ev(5, "a")], [_ev(0, "b"), _ev(3, "b")], []))
    assert [(e.at, e.key) for e in merged] == [(0, "a"), (0, "b"), (3, "b"), (5, "a")]


def test_ndjson_round_trip(tmp_path: Path) -> None:
    events = list(
        TransactionSimulator(
            SimConfig(n_customers=50, n_terminals=100, n_days=3, label_delay_days=1)
        ).events()
    )
    events += list(SeriesSimulator(SeriesConfig(n_points=5, anomaly_prob=0.5)).events())
    with NdjsonSink(tmp_path / "with.ndjson", truth=True) as sink:
        sink.send(events[:10])
        sink.send(events[10:])
    assert list(read_ndjson(tmp_path / "with.ndjson")) == events
    with NdjsonSink(tmp_path / "bare.ndjson") as sink:
        sink.send(events)
    bare = list(read_ndjson(tmp_path / "bare.ndjson"))
    assert [(e.at, e.topic, e.key, e.payload) for e in bare] == [
        (e.at, e.topic, e.key, e.payload) for e in events
    ]
    assert all(e.fraud is None for e in bare)
    line = orjson.loads((tmp_path / "bare.ndjson").read_bytes().splitlines()[0])
    assert set(line) == {"topic", "key", "payload", "at"}
    (tmp_path / "bad.ndjson").write_text('{"topic": "nope"}\n')
    with pytest.raises(ValueError, match=r"bad\.ndjson:1"):
        list(read_ndjson(tmp_path / "bad.ndjson"))


def test_http_sink_retries_503_and_reports_4xx() -> None:
    calls: list[httpx.Request] = []
    replies = [httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(202)]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.url.path == "/v1/labels":
            return httpx.Response(422, json={"errors": [{"field": "label", "reason": "bad"}]})
        return replies.pop(0)

    slept: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))
    sink = HttpSink("http://rw/", "k1", client=client, sleep=slept.append)
    sink.send([_tx("e1"), _tx("e2")])
    assert slept == [2.0] and len(calls) == 2
    assert calls[-1].headers["authorization"] == "Bearer k1"
    assert [p["event_id"] for p in orjson.loads(calls[-1].content)] == ["e1", "e2"]
    label = SimEvent(0, "labels", "e1", {"event_id": "e1", "label": 1, "timestamp": 0})
    with pytest.raises(SinkError, match=r"422.*reason"):
        sink.send([label])
    sink.close()


def test_http_sink_waits_out_backpressure_longer_than_its_retries() -> None:
    replies = [httpx.Response(429, headers={"Retry-After": "1"}) for _ in range(8)]
    replies.append(httpx.Response(202))
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: replies.pop(0)))
    slept: list[float] = []
    sink = HttpSink("http://rw/", "k", client=client, sleep=slept.append, max_retries=2)
    sink.send([_tx("e1")])  # eight 429s, more than the two retries: still delivered
    assert slept == [1.0] * 8 and not replies
    replies.extend(httpx.Response(429, headers={"Retry-After": "1"}) for _ in range(6))
    slept.clear()
    short = HttpSink(
        "http://rw/", "k", client=client, sleep=slept.append, max_retries=2, max_backpressure_s=3
    )
    with pytest.raises(SinkError, match="429"):
        short.send([_tx("e2")])  # 3 s of backpressure, then 2 retries, then it gives up
    assert len(slept) == 5
    sink.close()


def _tx(event_id: str) -> SimEvent:
    payload = {
        "event_id": event_id,
        "timestamp": 0,
        "card_id": "c",
        "terminal_id": "t",
        "amount": 1,
    }
    return SimEvent(0, "transactions", "c", payload)


def test_kafka_sink_names_topics_and_raises_delivery_errors() -> None:
    class FakeProducer:
        def __init__(self) -> None:
            self.produced: list[tuple[str, bytes, bytes]] = []
            self.callbacks: list = []

        def produce(self, topic: str, value: bytes, key: bytes, on_delivery) -> None:
            self.produced.append((topic, key, value))
            self.callbacks.append(on_delivery)

        def poll(self, timeout: float) -> int:
            return 0

        def flush(self, timeout: float) -> int:
            for cb in self.callbacks:
                cb("broker said no", type("Msg", (), {"topic": lambda self: "p-transactions"})())
            return 0

    fake = FakeProducer()
    ctx = Context.from_settings(Settings(topic_prefix="p-"))
    sink = KafkaSink(ctx.kafka_config, ctx.names, producer=fake)
    sink.send([_tx("e1")])
    assert fake.produced == [("p-transactions", b"c", orjson.dumps(_tx("e1").payload))]
    with pytest.raises(SinkError, match="broker said no"):
        sink.close()
