"""The offline store: labeled rows as Parquet files partitioned by event day.

Layout: ``<data_dir>/offline/labeled/day=YYYY-MM-DD/part-<writer>-<seq>.parquet``. Rows are
buffered and written in batches; each file is written under a hidden temporary name and then
linked to its final name, so a reader never sees half a file and a restarted writer never
overwrites an earlier one. The schema is read from ``models.features.FEATURE_NAMES`` (plus the
store's attribute columns, see ``FeatureSet``) when a file is written or read: files written
before a feature was added read back with NaN there.

>>> import tempfile
>>> store = OfflineStore(Path(tempfile.mkdtemp()), writer="doc", flush_rows=2)
>>> row = {"event_id": "e1", "card_id": "c1", "terminal_id": "t1", "epoch": 86_400.0,
...        "label": 1, "score": 0.9, "online_score": 0.8, "batch_score": None,
...        "decision": "decline", "groups": {"age_band": "25-34"}}
>>> store.append([row])
>>> store.read(0, 2 * 86_400).empty   # still buffered
True
>>> store.flush()
1
>>> df = store.read(86_400, 86_401)
>>> df[["event_id", "label", "groups"]].values.tolist()
[['e1', 1, '{"age_band":"25-34"}']]
>>> store.read(86_400, 86_401, columns=["label", "card_id"]).columns.tolist()  # (epoch: always)
['card_id', 'epoch', 'label']
>>> store.day_rows(0, 2 * 86_400)  # from the files' footers
[(86400.0, 1)]
>>> store.latest_epoch()
86400.0
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from riverwatch.models.feature_set import FeatureSet
from riverwatch.stores.offline_footers import file_rows, newest_files

log = logging.getLogger(__name__)
DAY_S = 86_400
BASE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("event_id", pa.string()),
    ("card_id", pa.string()),
    ("terminal_id", pa.string()),
    ("epoch", pa.float64()),
    ("label", pa.int8()),
    ("score", pa.float64()),
    ("online_score", pa.float64()),
    ("batch_score", pa.float64()),
    ("decision", pa.string()),
    ("groups", pa.string()),
)


def row_schema(feature_set: FeatureSet | None = None) -> pa.Schema:
    """The schema of a stored row: the base columns, then one float64 per current feature."""
    names = (feature_set or FeatureSet()).names
    return pa.schema([*BASE_COLUMNS, *((name, pa.float64()) for name in names)])


def day_name(epoch: float) -> str:
    """The partition (UTC day, ``YYYY-MM-DD``) an event time belongs to.

    >>> day_name(0.0), day_name(86_399.5)
    ('1970-01-01', '1970-01-01')
    """
    return datetime.fromtimestamp(math.floor(epoch / DAY_S) * DAY_S, UTC).strftime("%Y-%m-%d")


def _cell(name: str, value: Any) -> Any:
    if name == "groups" and not isinstance(value, str | None):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


class OfflineStore:
    """Appends labeled rows to day-partitioned Parquet and reads them back by event time.

    ``writer`` names this writer's files (anything; unsafe characters become ``-``).
    ``feature_set`` adds its attribute columns to the built-in features (writers and readers
    must pass the same one, from RIVERWATCH_FEATURE_ATTRIBUTES). One instance may be shared by
    threads. Call :meth:`close` (or :meth:`flush`) before exit: rows
    still buffered are lost otherwise.
    """

    def __init__(
        self,
        data_dir: Path,
        writer: str = "w",
        flush_rows: int = 5000,
        feature_set: FeatureSet | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "offline" / "labeled"
        self.feature_set = feature_set or FeatureSet()
        self.writer = re.sub(r"[^A-Za-z0-9_.]+", "-", writer).strip("-.") or "w"
        self.flush_rows = flush_rows
        self._buffer: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()
        # Microseconds at start-up: a restarted writer with the same name starts above the
        # sequence numbers of its previous life (and _publish never overwrites anyway).
        self._seq = time.time_ns() // 1000
        self.dropped = 0

    @property
    def buffered(self) -> int:
        """Rows appended but not yet written."""
        return len(self._buffer)

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Buffer rows (keys: the base columns and the feature names); write when enough.

        ``groups`` may be a dict (stored as JSON) or a JSON string; a missing feature or
        ``batch_score`` is stored as null.
        """
        with self._lock:
            self._buffer.extend(rows)
            full = len(self._buffer) >= self.flush_rows
        if full:
            self.flush()

    def flush(self) -> int:
        """Write every buffered row now (one file per day touched); return the rows written.

        A row that does not fit the schema is logged and dropped (counted in ``dropped``)
        rather than blocking the rows after it; on an I/O error the rows of the days not yet
        written stay buffered for the next flush, and the error is raised.
        """
        with self._lock:
            rows, self._buffer = self._buffer, []
            by_day: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
            for row in rows:
                try:
                    by_day[day_name(float(row["epoch"]))].append(row)
                except (KeyError, TypeError, ValueError, OverflowError):
                    self._drop(row, "no usable epoch")
            written = 0
            days = sorted(by_day)
            for i, day in enumerate(days):
                try:
                    written += self._write(by_day[day], self.root / f"day={day}")
                except OSError:
                    self._buffer = [r for d in days[i:] for r in by_day[d]] + self._buffer
                    raise
            return written

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()

    def _drop(self, row: Mapping[str, Any], why: str) -> None:
        self.dropped += 1
        log.error("offline store: dropped row %s (%s)", row.get("event_id"), why)

    def _table(self, rows: list[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
        columns = {name: [_cell(name, r.get(name)) for r in rows] for name in schema.names}
        return pa.Table.from_pydict(columns, schema=schema)

    def _write(self, rows: list[Mapping[str, Any]], folder: Path) -> int:
        schema = row_schema(self.feature_set)
        try:
            table = self._table(rows, schema)
        except (pa.ArrowException, TypeError, ValueError):
            good = []  # find the culprits one by one (rare): keep the rest
            for row in rows:
                try:
                    self._table([row], schema)
                    good.append(row)
                except (pa.ArrowException, TypeError, ValueError) as exc:
                    self._drop(row, str(exc))
            table = self._table(good, schema)
        if table.num_rows:
            self._publish(table, folder)
        return table.num_rows

    def _publish(self, table: pa.Table, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # Dot-prefixed: pyarrow datasets skip it, so readers never see the file half written.
        tmp = folder / f".tmp-{self.writer}-{os.getpid()}-{threading.get_ident()}.parquet"
        pq.write_table(table, tmp)
        try:
            while True:
                self._seq += 1
                final = folder / f"part-{self.writer}-{self._seq}.parquet"
                try:
                    os.link(tmp, final)  # atomic, and unlike rename it never replaces a file
                    break
                except FileExistsError:
                    continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def days(self) -> list[str]:
        """The day partitions present, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name[4:] for p in self.root.glob("day=*") if p.is_dir())

    def read(
        self,
        start_epoch: float,
        end_epoch: float,
        columns: Sequence[str] | None = None,
        newest: int | None = None,
    ) -> pd.DataFrame:
        """Every written row with ``start_epoch <= epoch < end_epoch``, sorted by epoch.

        Partition pruning by name: only the day folders overlapping the window are listed and
        opened, so a read costs the window, not the history. Columns: the current
        :func:`row_schema`, or those of it in ``columns`` (the trainer's: the ids, the
        decision and the groups are ~60% of a row's memory); rows buffered but not flushed are
        not included. With ``newest``, at most that many: the newest rows of the files taken
        newest first by the latest event time in their footers until they hold that many, so
        no more is read (the newest rows of the range where files do not overlap in time, as
        one writer's do not; about the newest where writers' files do).
        """
        schema = row_schema(self.feature_set)
        if columns is not None:
            schema = pa.schema([f for f in schema if f.name in set(columns) | {"epoch"}])
        if end_epoch <= start_epoch:
            return schema.empty_table().to_pandas()
        files = [
            str(f)
            for _, folder in self._days(start_epoch, end_epoch)
            for f in sorted(folder.glob("part-*.parquet"))
        ]
        if newest is not None:
            files = newest_files(files, start_epoch, newest)
        if not files:
            return schema.empty_table().to_pandas()
        dataset = ds.dataset(files, schema=schema, format="parquet")
        cond = (ds.field("epoch") >= start_epoch) & (ds.field("epoch") < end_epoch)
        table = dataset.to_table(filter=cond)
        table = table.take(pc.sort_indices(table, [("epoch", "ascending")]))  # stable
        df = table.to_pandas(self_destruct=True)
        del table
        pa.default_memory_pool().release_unused()
        if newest is not None and len(df) > newest:
            df = df.iloc[len(df) - newest :].reset_index(drop=True)
        return df

    def day_rows(self, start_epoch: float, end_epoch: float) -> list[tuple[float, int]]:
        """``(day start, rows)`` of each day partition overlapping ``[start_epoch, end_epoch)``,
        oldest first, from the files' Parquet footers (no row is read): a day counts all of
        its rows, also where the range cuts it (an upper bound of what :meth:`read` returns).
        """
        if end_epoch <= start_epoch:
            return []
        out = []
        for day, folder in self._days(start_epoch, end_epoch):
            start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            out.append((start, file_rows(folder.glob("part-*.parquet"))))
        return out

    def _days(self, start_epoch: float, end_epoch: float) -> list[tuple[str, Path]]:
        """The day partitions (name, folder) overlapping ``[start_epoch, end_epoch)``."""
        first, last = day_name(start_epoch), day_name(math.nextafter(end_epoch, -math.inf))
        return [(d, self.root / f"day={d}") for d in self.days() if first <= d <= last]

    def latest_epoch(self) -> float | None:
        """The newest event time written (looks at the newest day only), or None when empty."""
        for day in reversed(self.days()):
            files = sorted((self.root / f"day={day}").glob("part-*.parquet"))
            if files:
                table = ds.dataset([str(f) for f in files], format="parquet").to_table(["epoch"])
                if table.num_rows:
                    return float(pc.max(table["epoch"]).as_py())
        return None
