"""The pipeline benchmark's score reader stamps a score when it is fetched, not when a batch
of 10,000 would be full."""

from __future__ import annotations

import time
from typing import Any

from bench.openloop import stamped


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
    c = _Consumer([_Msg(b'{"event_id": "e1"}'), _Msg(b'{"event_id": "e2"}')])
    t0 = time.time()
    lines = stamped(c, block_s=5.0)
    took = time.time() - t0
    assert [line.split()[0] for line in lines] == [b"e1", b"e2"]
    # stamped at once: the old reader (consume(10_000, 5.0)) took the whole 5 s here
    assert took < 2.5, took
    assert float(lines[0].split()[1]) - t0 < 2.5


def test_an_idle_reader_waits_for_the_first_score_at_most_its_block() -> None:
    c = _Consumer([])
    assert stamped(c, block_s=0.01) == []
    assert all(timeout <= 0.01 for _, timeout in c.calls)
