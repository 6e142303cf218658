"""Bisection of a batch whose handler raises: the poison records alone are dead-lettered."""

from __future__ import annotations

import pytest
import redis

from riverwatch.core.errors import ServiceUnavailable
from riverwatch.streams.batching import TRANSIENT
from riverwatch.streams.records import Out, Record, isolate


def records(values: list[bytes]) -> list[Record]:
    return [Record("in", 0, i, None, v) for i, v in enumerate(values)]


class Handler:
    """Outputs each record's value; raises when a batch holds a value in ``poison``."""

    def __init__(self, poison: set[bytes], error: Exception | None = None):
        self.poison = poison
        self.error = error or ValueError("cannot handle")
        self.calls = 0

    def __call__(self, recs: list[Record]) -> list[Out]:
        self.calls += 1
        if any(r.value in self.poison for r in recs):
            raise self.error
        return [Out("out", None, r.value or b"") for r in recs]


def dead(rec: Record, exc: Exception) -> Out:
    return Out("dead", None, f"{rec.offset}:{exc}".encode())


@pytest.mark.parametrize(
    ("n", "bad"),
    [(1, {0}), (2, {1}), (7, {0, 6}), (64, {3, 4, 40}), (100, set(range(100))), (10, set())],
)
def test_every_poison_record_is_dead_lettered_and_every_other_handled_in_order(
    n: int, bad: set[int]
) -> None:
    values = [b"bad%d" % i if i in bad else b"ok%d" % i for i in range(n)]
    handler = Handler({v for v in values if v.startswith(b"bad")})
    outs = isolate(handler, records(values), dead)
    expected = [
        Out("dead", None, b"%d:cannot handle" % i) if i in bad else Out("out", None, values[i])
        for i in range(n)
    ]
    assert outs == expected


def test_one_poison_among_many_costs_a_logarithmic_number_of_calls() -> None:
    handler = Handler({b"bad"})
    values = [b"ok"] * 1000
    values[617] = b"bad"
    isolate(handler, records(values), dead)
    assert handler.calls <= 2 * 10 + 1  # two halves per level, log2(1000) < 10 levels


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("down"),
        redis.exceptions.TimeoutError("slow"),
        ConnectionRefusedError(111, "refused"),
        ServiceUnavailable("broker down"),
    ],
)
def test_an_unavailable_service_is_raised_for_the_whole_batch_not_dead_lettered(
    error: Exception,
) -> None:
    handler = Handler({b"ok"}, error)  # every batch fails, as when Redis is down
    with pytest.raises(type(error)):
        isolate(handler, records([b"ok"] * 8), dead, TRANSIENT)
    assert handler.calls == 1
