"""The offline store on disk: day partitions, windows, buffering, atomic files, schema growth."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from riverwatch.core.settings import Settings
from riverwatch.models import features
from riverwatch.stores.offline import OfflineStore, row_schema

pytestmark = pytest.mark.integration

DAY = 86_400
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def row(i: int, epoch: float, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "card_id": f"c{i % 3}",
        "terminal_id": "t1",
        "epoch": epoch,
        "label": i % 2,
        "score": 0.1 * (i % 10),
        "online_score": 0.2,
        "batch_score": None if i % 2 else 0.3,
        "decision": "approve",
        "groups": {"age_band": "25-34", "region": "north"},
        **{name: float(i) for name in features.FEATURE_NAMES},
        **extra,
    }


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_rows_are_partitioned_by_event_day_and_read_by_window(settings: Settings) -> None:
    store = OfflineStore(settings.data_dir, writer="host:123", flush_rows=1000)
    # three days, out of order, one row exactly at midnight
    rows = [row(i, T0 + (i % 3) * DAY + i * 60) for i in range(30)] + [row(99, T0 + 2 * DAY)]
    store.append(rows)
    assert store.buffered == 31 and store.read(T0, T0 + 3 * DAY).empty
    assert store.flush() == 31 and store.buffered == 0 and store.flush() == 0
    root = settings.data_dir / "offline" / "labeled"
    written = files(root)
    assert [f.split("/")[0] for f in written] == [
        "day=2026-01-01",
        "day=2026-01-02",
        "day=2026-01-03",
    ]
    assert all(f.split("/")[1].startswith("part-host-123-") for f in written)
    assert store.days() == ["2026-01-01", "2026-01-02", "2026-01-03"]

    everything = store.read(T0, T0 + 3 * DAY)
    assert len(everything) == 31 and everything["epoch"].is_monotonic_increasing
    assert list(everything.columns) == row_schema().names
    day2 = store.read(T0 + DAY, T0 + 2 * DAY)  # [start, end): midnight of day 3 excluded
    assert sorted(day2["event_id"]) == sorted(f"e{i}" for i in range(30) if i % 3 == 1)
    edge = store.read(T0 + 2 * DAY, T0 + 2 * DAY + 1)
    assert edge["event_id"].tolist() == ["e99"]
    assert store.read(T0 + 10 * DAY, T0 + 11 * DAY).empty and store.read(T0, T0).empty
    assert store.latest_epoch() == max(r["epoch"] for r in rows)

    e1 = everything.set_index("event_id").loc["e1"]
    assert e1["groups"] == '{"age_band":"25-34","region":"north"}' and e1["label"] == 1
    assert math.isnan(e1["batch_score"]) and e1["amount"] == 1.0
    assert everything.set_index("event_id").loc["e2", "batch_score"] == 0.3


def test_appends_flush_every_n_rows_and_restarts_never_overwrite(settings: Settings) -> None:
    store = OfflineStore(settings.data_dir, writer="w1", flush_rows=10)
    store.append([row(i, T0 + i) for i in range(9)])
    assert store.buffered == 9
    store.append([row(9, T0 + 9), row(10, T0 + 10)])  # reaches 10: everything is written
    assert store.buffered == 0 and len(store.read(T0, T0 + DAY)) == 11
    again = OfflineStore(
        settings.data_dir, writer="w1", flush_rows=10
    )  # the same writer, restarted
    again.append([row(100 + i, T0 + 100 + i) for i in range(3)])
    again.close()
    assert len(store.read(T0, T0 + DAY)) == 14
    root = settings.data_dir / "offline" / "labeled"
    assert len(files(root)) == 2 and not [f for f in files(root) if "/." in f]


def test_a_reader_never_sees_a_half_written_file(settings: Settings) -> None:
    store = OfflineStore(settings.data_dir, writer="w", flush_rows=10**9)
    folder = settings.data_dir / "offline" / "labeled" / "day=2026-01-01"
    folder.mkdir(parents=True)
    (folder / ".tmp-other-1-2.parquet").write_bytes(b"PAR1 half a file")  # a writer mid-way
    stop = threading.Event()
    seen: list[int] = []

    def read_while_writing() -> None:
        while not stop.is_set():
            seen.append(len(store.read(T0, T0 + DAY)))

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for batch in range(20):
            store.append([row(batch * 50 + i, T0 + batch * 50 + i) for i in range(50)])
            store.flush()
    finally:
        stop.set()
        reader.join(10)
    assert seen and all(n % 50 == 0 for n in seen)  # whole files only
    assert len(store.read(T0, T0 + DAY)) == 1000


def test_files_from_before_a_feature_was_added_read_back_with_nan(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = OfflineStore(settings.data_dir, writer="w", flush_rows=100)
    store.append([row(1, T0)])
    store.flush()
    monkeypatch.setattr(features, "FEATURE_NAMES", (*features.FEATURE_NAMES, "brand_new"))
    store.append([row(2, T0 + 1, brand_new=7.0)])
    store.flush()
    df = store.read(T0, T0 + DAY).set_index("event_id")
    assert "brand_new" in df.columns
    assert math.isnan(df.loc["e1", "brand_new"]) and df.loc["e2", "brand_new"] == 7.0
    assert isinstance(df, pd.DataFrame) and df.loc["e1", "amount"] == 1.0


def test_a_bad_row_is_dropped_and_a_failed_write_is_retried_without_duplicates(
    settings: Settings,
) -> None:
    store = OfflineStore(settings.data_dir, writer="w", flush_rows=10**6)
    broken = row(2, T0 + 2, amount="a lot")
    no_time = {k: v for k, v in row(3, T0).items() if k != "epoch"}
    store.append([row(1, T0 + 1), broken, no_time, row(4, T0 + 4)])
    assert store.flush() == 2 and store.dropped == 2
    assert store.read(T0, T0 + DAY)["event_id"].tolist() == ["e1", "e4"]

    root = settings.data_dir / "offline" / "labeled"
    (root / "day=2026-01-02").write_bytes(b"")  # a file where day 2's folder must go
    store.append([row(5, T0 + 5), row(6, T0 + DAY + 6)])
    with pytest.raises(OSError):
        store.flush()
    assert store.buffered == 1  # day 1 is written; only day 2's row waits
    (root / "day=2026-01-02").unlink()
    assert store.flush() == 1
    everything = store.read(T0, T0 + 2 * DAY)["event_id"].tolist()
    assert everything == ["e1", "e4", "e5", "e6"]


def test_the_newest_rows_are_read_from_the_newest_files_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset's warm-up (RIVERWATCH_RESET_WARM_MAX_ROWS) and the day counts a retrain is
    bounded by (RIVERWATCH_TRAIN_MAX_ROWS) come from the files' footers: the newest rows are
    read from the files holding the newest event times, no more."""
    from riverwatch.stores import offline, offline_rows

    store = OfflineStore(settings.data_dir, writer="w", flush_rows=100)
    for day in range(10):  # one file a day, 100 rows each, days 2-11
        store.append([row(i, T0 + 2 * DAY + 864.0 * i) for i in range(100 * day, 100 * day + 100)])
    store.close()
    assert len(files(settings.data_dir)) == 10
    opened: list[int] = []
    dataset = offline.ds.dataset
    monkeypatch.setattr(
        offline.ds, "dataset", lambda files, **kw: opened.append(len(files)) or dataset(files, **kw)
    )
    got = store.read(T0, T0 + 20 * DAY, newest=250)
    assert got["event_id"].tolist() == [f"e{i}" for i in range(750, 1000)]
    assert opened == [3]  # the 3 newest files of 10
    start = T0 + 2 * DAY + 864.0 * 950  # a window holding 50 rows: all of them, one file read
    assert store.read(start, T0 + 20 * DAY, newest=250)["event_id"].tolist() == [
        f"e{i}" for i in range(950, 1000)
    ]
    assert opened[-1] == 1
    X, _ = offline_rows.warm_rows(store, (T0, T0 + 20 * DAY), 120)
    assert X.shape == (120, len(features.FEATURE_NAMES)) and X[0, 0] == 880.0
    assert offline_rows.warm_rows(store, (T0, T0 + 20 * DAY), 0)[0].shape[0] == 0
    days = store.day_rows(T0, T0 + 20 * DAY)
    assert [n for _, n in days] == [100] * 10 and days[0][0] == T0 + 2 * DAY


def test_rows_of_one_event_time_come_back_in_their_written_order(settings: Settings) -> None:
    """The read sorts by event time, stably (files in name order, rows in file order)."""
    store = OfflineStore(settings.data_dir, writer="w", flush_rows=2)
    for pair in ((5, 4), (3, 2), (1, 0)):  # three files, equal event times but two rows
        store.append([row(i, T0 + (100.0 if i == 0 else 50.0)) for i in pair])
    store.close()
    got = store.read(T0, T0 + DAY)
    assert got["event_id"].tolist() == ["e5", "e4", "e3", "e2", "e1", "e0"]
    assert got.index.tolist() == list(range(6))
