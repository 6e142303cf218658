"""Three times the scoring capacity offered through the API of `riverwatch up` (issue 12,
point 6): ingest pushes back (429 with Retry-After past RIVERWATCH_MAX_LAG), the scorer lag
and the processes' memory stay bounded, and every transaction answered 202 is scored.

The capacity is measured first in the same run (a burst through the API, timed until scored);
then well-behaved clients (they wait Retry-After and send the same batch again) offer three
times that for a while. Real processes only; every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from riverwatch.core.names import Names
from riverwatch.shell.procs import rss_bytes
from riverwatch.shell.status import consumer_lag
from tests.support import TEST_BROKER
from tests.support.topics import unscored
from tests.support.up import RECOVER_S, Up, ready, running_up
from tests.support.workers import poll

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.chaos,
    pytest.mark.timeout(900),
]
MAX_LAG = 2000
CLIENTS = 4
OFFER_S = 20.0
MB = 1024 * 1024


def txs(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"o{i}",
            "timestamp": 1_767_225_600 + i,
            "card_id": f"c{i % 300}",
            "terminal_id": f"t{i % 50}",
            "amount": 5.0 + i % 200,
        }
        for i in range(start, start + count)
    ]


def wait_scored(r: redis.Redis, ids: list[str], timeout: float) -> float:
    """Seconds until every id is scored (fails after ``timeout``)."""
    t0 = time.monotonic()
    poll(lambda: not unscored(r, Names(), ids), timeout, f"{len(ids)} scores", every=0.1)
    return time.monotonic() - t0


class Sampler(threading.Thread):
    """Every half second: the scorer lag and the RSS of the broker, the scorer and the API."""

    def __init__(self, up: Up):
        super().__init__(daemon=True)
        self.up, self.stop = up, threading.Event()
        self.lag: list[int] = []
        self.rss: dict[str, list[int]] = {"broker": [], "worker-0": [], "api": []}

    def run(self) -> None:
        settings, names = self.up.settings(), Names()
        topic = names.topic("transactions")
        group = names.group(settings.consumer_group, "scorer")
        while not self.stop.wait(0.5):
            lag = consumer_lag(settings, topic, group)
            if lag is not None:
                self.lag.append(lag)
            children = self.up.children()
            for name, series in self.rss.items():
                pid = children[name]["pid"]
                rss = rss_bytes(pid) if pid else None
                if rss is not None:
                    series.append(rss)


def test_three_times_the_scoring_capacity_gets_429_bounded_lag_and_memory_and_loses_nothing(
    tmp_path: Path,
) -> None:
    env = {
        "RIVERWATCH_MAX_LAG": str(MAX_LAG),
        # Small batches: a capacity that the API and these clients can triple on 2 cores.
        "RIVERWATCH_SCORE_BATCH_MAX": "20",
    }
    with running_up(tmp_path / "data", "--workers", "1", "--broker", TEST_BROKER, **env) as up:
        poll(lambda: ready(up), RECOVER_S, "readyz", every=0.5)
        r = up.redis()
        http = httpx.Client(base_url=up.base, headers=up.h, timeout=30)
        # Capacity: a burst under the bound, timed from its first 500 scored to its last (the
        # steady rate: the first records' latency is not throughput).
        burst = txs(0, 1800)
        for k in range(0, len(burst), 300):
            assert http.post("/v1/transactions", json=burst[k : k + 300]).status_code == 202
        wait_scored(r, [str(t["event_id"]) for t in burst[:500]], 120)
        t0 = time.monotonic()
        wait_scored(r, [str(t["event_id"]) for t in burst], 120)
        capacity = (len(burst) - 500) / (time.monotonic() - t0)
        rate = 3 * capacity
        batch = max(20, int(rate / 20))  # 20 requests a second in all

        sampler = Sampler(up)
        sampler.start()
        answers: Counter[int] = Counter()
        accepted: list[str] = []
        no_retry_after: list[int] = []
        lock = threading.Lock()
        next_batch = iter(range(10**6))
        start = time.monotonic()
        end = start + OFFER_S

        def client() -> None:
            with httpx.Client(base_url=up.base, headers=up.h, timeout=30) as c:
                while True:
                    with lock:
                        k = next(next_batch)
                    due = start + k * batch / rate
                    if due >= end:
                        return
                    time.sleep(max(0.0, due - time.monotonic()))
                    body = txs(10_000 + k * batch, batch)
                    while time.monotonic() < end:  # the same batch until it is taken
                        got = c.post("/v1/transactions", json=body)
                        with lock:
                            answers[got.status_code] += 1
                        if got.status_code == 202:
                            with lock:
                                accepted.extend(str(t["event_id"]) for t in body)
                            break
                        if got.status_code not in (429, 503):
                            raise AssertionError(f"{got.status_code}: {got.text[:300]}")
                        if "retry-after" not in got.headers:
                            no_retry_after.append(got.status_code)
                        time.sleep(float(got.headers.get("retry-after", "1")))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(OFFER_S + 60)
            assert not t.is_alive(), "a client hung"
        offered_s = time.monotonic() - start
        scored_in_phase = len(accepted) - len(unscored(r, Names(), accepted))
        drain = wait_scored(r, accepted, 120 + len(accepted) / capacity * 3)
        sampler.stop.set()
        sampler.join(10)
        http.close()
        r.close()
        assert up.proc.poll() is None

    offered = rate * OFFER_S
    print(
        f"capacity {capacity:.0f}/s; offered {rate:.0f}/s for {offered_s:.0f} s "
        f"({offered:.0f}); accepted {len(accepted)}, scored {scored_in_phase} during the "
        f"offer ({scored_in_phase / offered_s:.0f}/s), the rest {drain:.1f} s later; answers "
        f"{dict(answers)}; lag max {max(sampler.lag, default=-1)} (bound {MAX_LAG}); RSS MB "
        + ", ".join(f"{n} {s[0] / MB:.0f}->{max(s) / MB:.0f}" for n, s in sampler.rss.items() if s)
    )
    refused = answers[429] + answers[503]
    assert refused > 0, "no 429/503: the offer did not exceed the bound"
    assert no_retry_after == []
    # The premise: the offer was well over what the scorer did meanwhile. Not 3x: the capacity
    # burst is timed on a shared machine whose load changes (a CI run under other work measured
    # 662/s, then scored 1,015/s during the offer of 1,986/s); the 429s above show the bound hit.
    assert offered >= 1.5 * scored_in_phase, "the offer was not well over the scoring rate"
    # Past the bound only the requests already in flight get in (the API adds what it accepted
    # to the lag it last read); the sampler reads the lag at other moments, hence the 2x.
    assert sampler.lag and max(sampler.lag) <= MAX_LAG + 2 * CLIENTS * batch
    for name, series in sampler.rss.items():
        assert series, f"no memory sample of {name}"
        # Memory follows what was accepted (the embedded broker keeps every record), not what
        # was offered: bounded by a constant plus 4 KB per accepted transaction.
        assert max(series) - series[0] <= 200 * MB + 4096 * len(accepted), name
