"""Latency of synchronous scoring (``POST /v1/score``) over real HTTP, with a batch champion.

The stack: embedded Kafka and Valkey, one worker, the API under uvicorn. A batch champion
(HistGradientBoosting) is trained by the trainer's own code on simulated labeled days and
promoted; a card history is ingested and scored by the worker, so every request reads real
feature buckets and scores with both models, as in production. Then, one client, sequential
requests:

* baseline: ``GET /healthz`` (the HTTP stack, no work) on the same connection;
* ``POST /v1/score`` (read-only) for transactions of known cards.

Target (issue 3): p99 under 20 ms on this machine. Environment: RW_SCORE_N (default 1000).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import stack_settings
from riverwatch.context import Context
from riverwatch.core.redis import redis_client
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.stores.offline import OfflineStore
from riverwatch.streams.trainer import retrain
from tests.support.apiserver import running_api
from tests.support.builders import labeled_frame
from tests.support.workers import poll, running_worker

N = int(os.environ.get("RW_SCORE_N", "1000"))
T0 = 1_767_225_600  # 2026-01-01


def tx(i: int, card: int) -> dict[str, object]:
    return {
        "event_id": f"b{i}",
        "timestamp": T0 + 86_400 + i,
        "card_id": f"card-{card}",
        "terminal_id": f"term-{card % 50}",
        "amount": round(random.uniform(5, 300), 2),
    }


def percentiles(lat: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(lat) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max())


def main() -> None:
    random.seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-score-bench-"))
    with EmbeddedStack(tmp / "stack") as stack:
        s = stack_settings(stack, tmp / "data", "sbench-", partitions=2)
        store = OfflineStore(s.data_dir, writer="bench")
        store.append(labeled_frame().to_dict("records"))
        store.close()
        ctx = Context.from_settings(s)
        registry = ctx.registry(redis_client(ctx.redis_config))
        ok, msg, _ = retrain(ctx, registry, store)
        champion = registry.champion()
        assert ok and champion is not None, msg
        print(f"champion: {msg}")
        with running_worker(s, tmp / "worker.log"), running_api(s) as api:
            history = [tx(i, i % 200) for i in range(2000)]
            for k in range(0, len(history), 500):
                r = api.http.post(
                    "/v1/transactions", json=history[k : k + 500], headers=api.auth("writer")
                )
                assert r.status_code == 202, r.text
            poll(lambda: api.redis.get(api.names.score("b1999")), 60, "the history scored")

            def timed(call: object) -> list[float]:
                out = []
                for i in range(N + 50):
                    t = time.perf_counter()
                    call(i)  # type: ignore[operator]
                    if i >= 50:  # the first 50 warm up connections and caches
                        out.append(time.perf_counter() - t)
                return out

            def health(_i: int) -> None:
                assert api.http.get("/healthz").status_code == 200

            def score(i: int) -> None:
                got = api.http.post(
                    "/v1/score", json=tx(10_000 + i, i % 200), headers=api.auth("reader")
                )
                assert got.status_code == 200, got.text
                assert got.json()["model_versions"].get("batch") == champion.name

            base = percentiles(timed(health))
            sync = percentiles(timed(score))
    print(f"\nsequential requests over HTTP, one client, n={N} each (after 50 warm-up)")
    print(f"{'request':<34}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    for name, (p50, p99, mx) in (
        ("GET /healthz (baseline)", base),
        (f"POST /v1/score (+ {champion.name})", sync),
    ):
        print(f"{name:<34}{p50:>8.2f}{p99:>8.2f}{mx:>8.2f}")
    print(f"p99 over the baseline: {sync[1] - base[1]:.2f} ms; target: POST /v1/score p99 < 20 ms")


if __name__ == "__main__":
    main()
