"""What the monitor's snapshots cost (``python -m bench.monitor_snapshot [seed]``): size, time
to write and to restore each part, at the deployment's bounds.

A core with the default windows (a day's time window keeping 50,000 rows, count windows of
2,000, labeled windows of 2,000, a reference of 5,000 rows) fed rows laid out as the scorer
stores them (every field, three group attributes), so the time window holds a full sample
and the reference reservoir is full; and concept-drift detectors over 200,000 labels of three
models and 15 group values (48 ADWIN detectors). The snapshot of ``scores`` is written at most
every RIVERWATCH_MONITOR_SNAPSHOT_S (5 s) by the monitor's thread: its time is that thread's.
"""

from __future__ import annotations

import pickle
import statistics
import sys
import time
import zlib
from typing import Any

import numpy as np

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.config import CoreConfig
from riverwatch.monitors.core.snapshot import MAGIC

DAY = 86_400.0
ATTRS = {"age_band": ["18-24", "25-34", "35-49", "50-64", "65+"],
         "region": ["north", "south", "east", "west", "centre"],
         "channel": ["web", "pos", "app", "moto", "atm"]}  # fmt: skip


def rows(n: int, t0: float, span: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` scored rows over ``[t0, t0 + span)`` with the scorer's fields."""
    out = []
    for i, t in enumerate(np.sort(t0 + rng.random(n) * span)):
        score = float(rng.beta(1, 30))
        out.append({
            "event_id": f"e{int(t)}-{i}", "card_id": f"c{int(rng.integers(50_000))}",
            "terminal_id": f"t{int(rng.integers(10_000))}", "epoch": float(t),
            "x": rng.lognormal(0, 0.5, len(FEATURE_NAMES)).round(4).tolist(),
            "groups": {a: v[int(rng.integers(len(v)))] for a, v in ATTRS.items()},
            "score": score, "online_score": float(rng.beta(1, 30)),
            "batch_score": float(rng.beta(1, 30)), "shadow_score": None,
            "batch_model": "m-3", "decision": "review" if score >= 0.5 else "approve",
            "dq": {"p": int(rng.integers(4)), "cat": {"channel": "web"}},
        })  # fmt: skip
    return out


def build(seed: int) -> MonitorCore:
    rng = np.random.default_rng(seed)
    # the settings' defaults (tests/unit/test_context_parts.py), but a day's warm-up
    cfg = CoreConfig(features=FEATURE_NAMES, drift_columns=FEATURE_NAMES[:12], warmup_s=DAY)
    core = MonitorCore(cfg, ConceptDriftMonitor())
    # day 0: warm-up; days 1-2.8: 70,000 events a day, the reference still collecting
    for d in range(3):
        span = 0.8 * DAY if d == 2 else DAY
        batch = rows(int(70_000 * span / DAY), d * DAY, span, rng)
        for lo in range(0, len(batch), 5000):
            core.scores(batch[lo : lo + 5000])
    labeled = rows(2000, 1.5 * DAY, 0.5 * DAY, rng)  # events of the reference period
    for i in range(100):  # 200,000 labels
        core.labels([(r, int(rng.random() < 0.02), 2 * DAY) for r in labeled], "m-3")
        del i
    return core


def timed(fn: Any, repeat: int = 5) -> tuple[float, Any]:
    took, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        took.append(time.perf_counter() - t0)
    return statistics.median(took), out


def main(seed: int) -> None:
    core = build(seed)
    tw = core.windows[-1]
    print(f"seed {seed}: time window open {tw.open_windows}, reference rows "
          f"{len(core._ref_rows)} of {core._seen}, concept detectors "
          f"{len(core.concept.report())}")  # fmt: skip
    print("| part | blob MB | pickle alone MB | write ms | of which pickle ms | restore ms |")
    print("|---|---|---|---|---|---|")
    for part in ("scores", "labels"):
        write_s, blob = timed(lambda p=part: core.snapshot(p))
        raw = zlib.decompress(blob[len(MAGIC) + 1 :])
        doc = pickle.loads(raw)
        pickle_s, _ = timed(lambda d=doc: pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL))
        again = MonitorCore(core.c, ConceptDriftMonitor())
        read_s, _ = timed(lambda p=part, b=blob, a=again: a.restore_snapshot(p, b))
        print(f"| {part} | {len(blob) / 2**20:.2f} | {len(raw) / 2**20:.2f} | "
              f"{1000 * write_s:.0f} | {1000 * pickle_s:.0f} | {1000 * read_s:.0f} |")  # fmt: skip
    print("(times: medians of 5)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
