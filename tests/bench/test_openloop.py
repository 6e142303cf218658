"""The pipeline benchmark's harness: its score reader stamps a score when it is fetched (not when
a batch of 10,000 would be full), and its open-loop sender does not spin a core."""

from __future__ import annotations

import time
from typing import Any

from bench.openloop import send, stamped


class _Msg:
    def __init__(self, value: bytes):
        self._value = value

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


class _Consumer:
    """librdkafka's ``consume(n, timeout)``: returns early only once ``n`` messages are in,
    else after the whole timeout (here: slept), with what is there."""

    def __init__(self, ready: list[_Msg]):
        self.ready = ready
        self.calls: list[tuple[int, float]] = []

    def consume(self, n: int, timeout: float) -> list[Any]:
        self.calls.append((n, timeout))
        if len(self.ready) < n and timeout > 0:
            time.sleep(timeout)  # fewer than n in: librdkafka waits the timeout out
        out, self.ready = self.ready[:n], self.ready[n:]
        return out


def test_a_fetched_score_is_stamped_without_waiting_for_a_full_batch() -> None:
    scored = b'{"event_id": "e2", "scored_at": "2026-12-04T09:00:00.250000+00:00"}'
    c = _Consumer([_Msg(b'{"event_id": "e1"}'), _Msg(scored)])
    t0 = time.time()
    lines = stamped(c, block_s=5.0)
    took = time.time() - t0
    assert [line.split()[0] for line in lines] == [b"e1", b"e2"]
    # stamped at once: the old reader (consume(10_000, 5.0)) took the whole 5 s here
    assert took < 2.5, took
    assert float(lines[0].split()[1]) - t0 < 2.5
    # the scorer's scored_at, for the latency's split; nan where a score has none
    assert lines[0].split()[2] == b"nan"
    assert float(lines[1].split()[2]) == 1796374800.25


def test_an_idle_reader_waits_for_the_first_score_at_most_its_block() -> None:
    c = _Consumer([])
    assert stamped(c, block_s=0.01) == []
    assert all(timeout <= 0.01 for _, timeout in c.calls)


class _Producer:
    """Counts what the sender asks of a producer."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.polls = 0

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append(value)

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def test_the_open_loop_sender_sleeps_between_sends_instead_of_polling_in_a_loop() -> None:
    """200 records at 1,000 a second: sent in order on schedule, with a handful of polls. The
    old sender polled with a sub-millisecond timeout (confluent-kafka rounds it down to 0) until
    each send was due: hundreds of thousands of polls, a core spinning."""
    p = _Producer()
    msgs = [(b"k", b"%d" % i) for i in range(200)]
    t0 = time.time()
    sched = send(p, "t", msgs, 1000.0)  # type: ignore[arg-type]
    assert p.sent == [v for _, v in msgs]
    assert list(sched) == sorted(sched) and abs(sched[1] - sched[0] - 0.001) < 1e-6
    assert time.time() - t0 >= 0.199  # on schedule: the last is due 0.199 s after the first
    assert p.polls <= 5, p.polls
