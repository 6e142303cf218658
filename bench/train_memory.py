"""A retrain's memory in process: the offline store's read and the fit, as the trainer does them.

Writes ``RW_TRAIN_ROWS`` (250,000: RIVERWATCH_TRAIN_MAX_ROWS's default) synthetic labeled rows
over 28 days into a fresh offline store (1% fraud, the frauds' features shifted), then reads
the training and hold-out windows with the columns the trainer reads
(``streams.fit.TRAIN_COLUMNS`` and the features) and runs ``train_and_evaluate`` (the fit,
the hold-out judgement and the refit, one OpenMP thread). Prints the process's RSS before the
read and the most it reached (VmHWM, reset before each phase) during the read and the fit:
what a retrain in process (the CLI's ``riverwatch train``) adds at its peak, and what it
keeps once done. First, the same fit as the worker's trainer runs it, in a child process
(streams/fit.py): this process's peak meanwhile, and the child's.

``python -m bench.train_memory`` (or ``RW_TRAIN_ROWS=100000 ...``).
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.promotion import TrainConfig, windows
from riverwatch.models.training import train_and_evaluate
from riverwatch.stores.offline import OfflineStore
from riverwatch.streams.fit import TRAIN_COLUMNS, FitChild, FitJob

DAY = 86_400
ROWS = int(os.environ.get("RW_TRAIN_ROWS", "250000"))


def status(key: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process, MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))


def reset_peak() -> None:
    """VmHWM back to the RSS now (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def fill(store: OfflineStore, n: int, t0: float, seed: int = 0) -> None:
    """``n`` labeled rows spread evenly over the 28 days from ``t0``, written in chunks."""
    rng = np.random.default_rng(seed)
    for lo in range(0, n, 50_000):
        rows = []
        for i in range(lo, min(n, lo + 50_000)):
            y = int(rng.random() < 0.01)
            x = rng.random(len(FEATURE_NAMES)) + y
            rows.append({
                "event_id": f"e{i:09d}", "card_id": f"c{i % 5000}", "terminal_id": f"t{i % 10000}",
                "epoch": t0 + i * (28 * DAY / n), "label": y, "score": 0.1, "online_score": 0.1,
                "batch_score": 0.1, "decision": "approve",
                "groups": {"age_band": "25-34", "region": "north"},
                **{k: float(v) for k, v in zip(FEATURE_NAMES, x, strict=True)},
            })  # fmt: skip
        store.append(rows)
        store.flush()


def main() -> None:
    """Print the read's and the fit's peaks over the RSS before them."""
    t0 = 100 * DAY
    store = OfflineStore(Path(tempfile.mkdtemp(prefix="riverwatch-train-")), writer="bench")
    fill(store, ROWS, t0)
    gc.collect()
    cfg = TrainConfig(refit=True, half_life_days=7)
    now = t0 + 35 * DAY
    w = windows(now, cfg)

    # the worker's way first (a fit in a child process), so this process is as it started
    base = status("VmRSS")
    reset_peak()
    start = time.monotonic()
    fitted = FitChild(FitJob(store.data_dir, FeatureSet(), now, cfg, w)).run()
    child_took, child_peak = time.monotonic() - start, status("VmHWM")
    child_held = status("VmRSS")

    reset_peak()
    start = time.monotonic()
    df = store.read(w.train_start, w.holdout_end, columns=[*TRAIN_COLUMNS, *FEATURE_NAMES])
    read_peak, after_read = status("VmHWM"), status("VmRSS")
    reset_peak()
    res = train_and_evaluate(df, now, cfg)
    fit_peak = status("VmHWM")
    took = time.monotonic() - start
    rows = len(df)
    del df, res
    gc.collect()
    held = status("VmRSS")
    print(
        f"riverwatch retrain memory: {rows:,} rows ({fitted.result.counts})\n"
        f"  in this process, {took:.0f} s: RSS before the read {base:.0f} MiB; the read's peak "
        f"+{read_peak - base:.0f} MiB (+{after_read - base:.0f} held after it); the fit's peak "
        f"+{fit_peak - base:.0f} MiB; {held - base:+.0f} MiB still held once it is done\n"
        f"  in a child process (the worker's trainer), {child_took:.0f} s: this process's peak "
        f"{child_peak - base:+.0f} MiB, {child_held - base:+.0f} MiB held after; the child's "
        f"peak RSS {fitted.stats['peak_rss_mib']:.0f} MiB, gone when it exits"
    )


if __name__ == "__main__":
    main()
