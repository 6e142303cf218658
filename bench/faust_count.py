"""A faust agent that only counts: the framework's own ceiling on this broker.

Run as ``python -m bench.faust_count BOOTSTRAP TOPIC N OUTFILE``; writes
``{"n": ..., "seconds": ...}`` (first to last event) to OUTFILE; the caller then stops it.
"""

from __future__ import annotations

import json
import sys
import time

import faust


def main() -> None:
    """Count N events of TOPIC with a plain faust agent and write the elapsed time."""
    bootstrap, topic, n, outfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    app = faust.App(
        f"bench-count-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        broker_session_timeout=6,
        broker_heartbeat_interval=2,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        datadir="/tmp/riverwatch-bench-faust",
    )
    src = app.topic(topic, value_serializer="raw", key_serializer="raw")
    state = {"n": 0, "t0": 0.0}

    @app.agent(src)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for _ in stream:
            if state["n"] == 0:
                state["t0"] = time.perf_counter()
            state["n"] += 1
            if state["n"] >= n:
                with open(outfile, "w") as f:
                    json.dump({"n": state["n"], "seconds": time.perf_counter() - state["t0"]}, f)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
