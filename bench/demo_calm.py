"""The demo's calm days, read through the running system: which monitor alerts come before
the drift episode, and how far each score's distribution moves from the reference week.

Runs `riverwatch up --demo` (the compressed schedule of tests/e2e/test_demo_story.py, seed 21
unless ``--seed``) ``--runs`` times on the given broker. Each run: the monitor's alerts read
from the API until the demo reaches "drift alert" (or ``--within`` seconds), then every score
read back from the ``scores`` topic. Per event day from the reference week's end to the
episode's second day: PSI of the combined, online and champion (batch) scores against the
reference week's (the monitor's own PSI, ``monitors.prediction``, on the same reference
days), the flagged events (combined score at or above the review threshold) and the cards
they belong to. Then every monitor alert (drift, quality, performance, fairness) on a window
that starts before the episode. About 3-4 minutes a run.

    python -m bench.demo_calm --runs 3 [--broker kafka] [--seed 21]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import numpy as np
import orjson
from confluent_kafka import Consumer

from riverwatch.core.settings import Settings
from riverwatch.monitors.prediction import ScoreDriftMonitor
from tests.e2e.test_demo_story import DEMO_ENV
from tests.support.up import up

DAY = 86_400.0
FIRST = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # the demo's first event day
MONITOR_KINDS = ("drift", "quality", "performance", "fairness")
SCORES = (("combined", 1), ("online", 2), ("champion", 3))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def watch(base: str, key: str, within_s: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The monitor's alerts and the demo's status once it reached "drift alert" (or later)."""
    h = {"Authorization": f"Bearer {key}"}
    t0, demo = time.monotonic(), {}
    while time.monotonic() - t0 < within_s:
        demo = httpx.get(f"{base}/v1/demo", headers=h).json()
        phase = demo.get("phase")
        print(f"  {time.monotonic() - t0:5.0f} s  {phase}: {demo.get('message', '')[:70]}")
        if phase in ("drift alert", "retrain", "recovered"):
            break
        time.sleep(5)
    alerts = httpx.get(f"{base}/v1/alerts", headers=h, params={"limit": 1000}).json()["items"]
    status = httpx.get(f"{base}/v1/monitor/status", headers=h).json()
    return [a for a in alerts if a["kind"] in MONITOR_KINDS], {**demo, "monitor": status}


def read_scores(bootstrap: str, topic: str, until: float, partitions: int) -> np.ndarray:
    """(event time, combined, online, champion score, card) of every score up to ``until``
    (read until each of the topic's ``partitions`` has passed it, or 5 idle seconds)."""
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"demo-calm-{time.time()}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )  # fmt: skip
    c.subscribe([topic])
    rows: list[tuple[Any, ...]] = []
    idle, deadline = 0, time.monotonic() + 120
    done: set[int] = set()
    while idle < 5 and time.monotonic() < deadline and len(done) < partitions:
        msgs = c.consume(2000, 1.0)
        idle = 0 if msgs else idle + 1
        for m in msgs:
            if m.error() or m.value() is None:
                continue
            d = orjson.loads(m.value())
            t = epoch(d["timestamp"])
            if t > until:
                done.add(m.partition())  # (each partition is in event order)
                continue
            b = d.get("batch_score")
            rows.append(
                (t, d["score"], d["online_score"], np.nan if b is None else b, d["card_id"])
            )
    c.close()
    return np.array(rows, dtype=object)


def report(rows: np.ndarray, ref: tuple[float, float], episode: float, threshold: float) -> None:
    t = rows[:, 0].astype(float)
    in_ref = (t >= ref[0]) & (t < ref[1])
    monitors = {name: ScoreDriftMonitor(rows[in_ref, j].astype(float)) for name, j in SCORES}
    print(f"  {'day':<11}{'events':>7}" + "".join(f"{n + ' PSI':>14}" for n, _ in SCORES)
          + "   flagged (cards)")  # fmt: skip
    day = ref[1] // DAY * DAY
    while day < episode + 2 * DAY:
        sel = (t >= day) & (t < day + DAY)
        psi = [monitors[n].compare(rows[sel, j].astype(float)).psi for n, j in SCORES]
        flagged = rows[sel & (rows[:, 1].astype(float) >= threshold), 4]
        cards = Counter(flagged).most_common(3)
        mark = " <- episode" if day >= episode else ""
        print(f"  {datetime.fromtimestamp(day, UTC):%Y-%m-%d} {int(sel.sum()):>7}"
              + "".join(f"{p:>14.3f}" for p in psi)
              + f"   {len(flagged)} ({len(set(flagged))}: {cards}){mark}")  # fmt: skip
        day += DAY


def one_run(args: argparse.Namespace, i: int) -> int | None:
    env = {**DEMO_ENV, "RIVERWATCH_DEMO_SEED": str(args.seed)}
    tmp = TemporaryDirectory()
    stack = up(Path(tmp.name), "--demo", "--broker", args.broker, env=env, for_s=args.within + 300)
    with tmp, stack as (_proc, base, key, lines):
        print(f"run {i + 1}: {base}")
        alerts, status = watch(base, key, args.within)
        boot = next(ln.split("answering on ")[1].split()[0] for ln in lines
                    if "Kafka answering on" in ln or "Tansu answering on" in ln)  # fmt: skip
        ep = status.get("episode") or {}
        if "event_day" not in ep:
            print("  no episode within the time given")
            return None  # not measured
        start = FIRST + ep["event_day"] * DAY
        mon = status["monitor"]
        ref = (epoch(mon["from"]), epoch(mon["until"]))
        settings = Settings()
        rows = read_scores(boot, "scores", start + 2 * DAY, settings.partitions)
        print(f"  reference {mon['from']} .. {mon['until']} ({mon['source']}); "
              f"episode from {datetime.fromtimestamp(start, UTC):%Y-%m-%d}")  # fmt: skip
        report(rows, ref, start, settings.review_threshold)
        before = [a for a in alerts if a["details"].get("window_start")
                  and epoch(a["details"]["window_start"]) < start]  # fmt: skip
        print(f"  monitor alerts on windows before the episode: {len(before)}")
        for a in before:
            print(f"    {a['details']['window_start'][:10]} {a['kind']}/{a['subject']}: "
                  f"{a['message'][:110]}")  # fmt: skip
        return len(before)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--broker", default="kafka", choices=("kafka", "tansu"))
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--within", type=int, default=300, help="seconds to reach the alert")
    args = ap.parse_args()
    total = [one_run(args, i) for i in range(args.runs)]
    print(f"monitor alerts before the episode, per run (None: no episode reached): {total}")


if __name__ == "__main__":
    main()
