"""On Tansu, the embedded broker of `riverwatch up`, a riverwatch consumer keeps up with a
producer writing at the same time (riverwatch.core.kafka.FETCH_WAIT_MS).

With the 2 ms fetch wait used before, Tansu stopped serving such a consumer after about
19,000 of the 30,000 records below (it then crawled at ~15 records/s): the scorer of `up`
stalled under a backlog while the broker spun. The deadline is a bound on a stall, not a
speed target: the consumer needs about as long as the producer when it keeps up.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import consumer
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import EmbeddedStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 2_000  # records/s, what the scorer is offered in the hot-path benchmark
N = 30_000
STALL_S = 60.0  # after the last record was sent


def _produce(bootstrap: str, topic: str) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    t0 = time.perf_counter()
    for i in range(N):
        while (wait := t0 + i / RATE - time.perf_counter()) > 0:
            p.poll(min(wait, 0.001))
        p.produce(topic, b"x" * 300, str(i).encode())
    p.flush(30)


def test_a_consumer_keeps_up_with_a_producer_on_tansu(tmp_path: Path) -> None:
    with EmbeddedStack(tmp_path, redis=False, broker="tansu") as stack:
        assert stack.bootstrap is not None
        s = Settings(kafka_bootstrap=stack.bootstrap, topic_prefix="tansu-fetch-")
        topic = "tansu-fetch-probe"
        admin = AdminClient({"bootstrap.servers": stack.bootstrap})
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(15)
        c = consumer(kafka_config(s), "tansu-fetch")
        c.subscribe([topic])
        producer = threading.Thread(target=_produce, args=(stack.bootstrap, topic))
        got, deadline = 0, float("inf")
        try:
            while not c.assignment():
                c.poll(0.2)
            producer.start()
            while got < N and time.monotonic() < deadline:
                msgs = c.consume(500, 0.2)
                got += sum(1 for m in msgs if m.error() is None)
                if deadline == float("inf") and not producer.is_alive():
                    deadline = time.monotonic() + STALL_S
        finally:
            producer.join(120)
            c.close()
        assert got == N, f"the consumer read {got:,} of {N:,} records, then stalled"
