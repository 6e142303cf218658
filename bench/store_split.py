"""Valkey's CPU per event in each feature-store script, in bench.pipeline's order, in process.

The scorer's handler (``Scorer.process``) on a real Valkey, no broker, batches of RW_SPLIT_BATCH
(968, about the pipeline's backfill batches): RW_SPLIT_LIVE (60,000) events at now, then
RW_SPLIT_BACKFILL (100,000) whose event times span the 30 days before now, in order, then half
as many live events again: the order bench.pipeline's ladder runs them in (saturation, then the
backfill), over the same 5,000 cards and 10,000 terminals (bench.openloop.payloads). Valkey's
CPU (``INFO cpu``, user + system) is read around every call of the read and the write script,
so each part prints Valkey's CPU per event and the share of each script: which one a backfill's
extra cost is in. One run; compare two checkouts by running each
(``PYTHONPATH=<checkout> python -m bench.store_split`` from the checkout). RW_SPLIT_KEYS (0)
other keys are stored first (48-byte strings with a day's TTL, as score keys are): a Valkey
that holds many keys (session 28, three runs at 2,000,000: live 73-84 us against 55-59 with
none; one at 1,500,000: 60, so not the key count alone: the main table's growth may weigh).
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.hotpath import records, scorer
from bench.openloop import payloads
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.streams.batching import tune_gc

BATCH = int(os.environ.get("RW_SPLIT_BATCH", "968"))
LIVE = int(os.environ.get("RW_SPLIT_LIVE", "60000"))
BACKFILL = int(os.environ.get("RW_SPLIT_BACKFILL", "100000"))
KEYS = int(os.environ.get("RW_SPLIT_KEYS", "0"))
FILL = """
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  redis.call('SET', 'fill:' .. i, string.rep('x', 48), 'EX', 86400)
end
"""


def main() -> None:
    """Print, per part, Valkey's CPU per event and its read and write scripts' shares."""
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-split-"))
    with EmbeddedStack(tmp, kafka=False) as stack:
        sc = scorer(Settings(redis_url=stack.redis_url, data_dir=tmp, topic_prefix="split-"))
        topic = sc.names.topic("transactions")
        r = sc.store.r
        tune_gc()
        spent: collections.Counter[str] = collections.Counter()

        def cpu() -> float:
            info = r.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        def timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any, **kwargs: Any) -> Any:
                c0 = cpu()
                out = call(*args, **kwargs)
                spent[name] += cpu() - c0
                return out

            return run

        sc.store._read = timed("read", sc.store._read)  # type: ignore[assignment]
        sc.store._write = timed("write", sc.store._write)  # type: ignore[assignment]
        for i in range(0, KEYS, 100_000):
            r.eval(FILL, 0, i, min(KEYS, i + 100_000) - 1)
        print(f"feature-store scripts, Valkey CPU per event (batches of {BATCH}, "
              f"{KEYS:,} other keys)")  # fmt: skip
        for seed, (part, n) in enumerate(
            (("live", LIVE), ("backfill", BACKFILL), ("live again", LIVE // 2))
        ):
            now = time.time()
            if part == "backfill":
                epochs = np.linspace(now - 30 * 86_400, now, n)
            else:
                epochs = np.full(n, now)
            recs = records(payloads(n, epochs, seed + 1, f"{seed}-"), topic)
            spent.clear()
            c0 = cpu()
            for i in range(0, n, BATCH):
                sc.process(recs[i : i + BATCH])
            total = cpu() - c0
            print(
                f"  {part:>10}: {1e6 * total / n:6.1f} us; read script "
                f"{1e6 * spent['read'] / n:5.1f}, write script {1e6 * spent['write'] / n:5.1f}"
            )


if __name__ == "__main__":
    main()
