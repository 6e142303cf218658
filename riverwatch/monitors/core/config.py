"""What the monitor's core is configured with, and the names it shares."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from riverwatch.monitors.dataquality.config import QualityConfig
from riverwatch.monitors.policy.config import PolicyConfig

DAY = 86_400.0
MODELS = (("combined", "score"), ("online", "online_score"), ("batch", "batch_score"))
Row = dict[str, Any]


def column(rows: Sequence[Row], key: str) -> np.ndarray:
    """The float ``key`` of each row (NaN where it is missing or None).

    >>> column([{"score": 0.5}, {"score": None}, {}], "score").tolist()
    [0.5, nan, nan]
    """
    return np.asarray([math.nan if (v := r.get(key)) is None else v for r in rows], dtype=float)


_PACK = msgspec.msgpack.Encoder().encode
_UNPACK = msgspec.msgpack.Decoder().decode


class RowCodec:
    """How a time window keeps its rows (:class:`monitors.windows.TimeWindows`' ``pack`` and
    ``unpack``): one MessagePack bytes object each (msgspec: floats exact, NaN and infinities
    kept, ints and floats apart) instead of a dict, a list and an object per value; a row as
    the array of its values after the number of its keys' tuple in this codec's table. A
    scorer's rows share one or a few such tuples, and the keys were 119 of a row's 410 bytes
    as a map. A day's window holds up to ``window_rows`` rows: as dicts they were most of the
    helper's memory and of a snapshot's CPU (pickled every RIVERWATCH_MONITOR_SNAPSHOT_S;
    ``bench.monitor_cost``). The table lives in the codec, which the window's ``pack`` and
    ``unpack`` (bound methods) carry into its snapshots, so a restored window reads its rows
    with the table they were packed with. At most :attr:`SHAPES` tuples: a row of another
    one is kept as a map, and one MessagePack cannot hold (an int past 64 bits, a numpy value:
    not what JSON gives) as it came.

    >>> import math, pickle
    >>> codec = RowCodec()
    >>> row = {"epoch": 1.0, "x": [1, 2.5, None, math.inf], "groups": {"region": "n"}}
    >>> kept = codec.pack(row)
    >>> back = codec.unpack(kept)
    >>> back == row and type(back["x"][0]) is int and list(back) == list(row)
    True
    >>> len(kept) < len(msgspec.msgpack.encode(row)), codec.shapes
    (True, [('epoch', 'x', 'groups')])
    >>> pickle.loads(pickle.dumps(codec)).unpack(kept) == row
    True
    """

    SHAPES = 64

    def __init__(self) -> None:
        self.shapes: list[tuple[str, ...]] = []
        self._number: dict[tuple[str, ...], int] = {}

    def pack(self, row: Row) -> bytes | Row:
        """``row`` as a window keeps it (see the class)."""
        keys = tuple(row)
        if (n := self._number.get(keys)) is None and len(self.shapes) < self.SHAPES:
            n = self._number[keys] = len(self.shapes)
            self.shapes.append(keys)
        try:
            return _PACK(row) if n is None else _PACK([n, *row.values()])
        except (TypeError, OverflowError):
            return row

    def unpack(self, kept: bytes | Row) -> Row:
        """The row :meth:`pack` kept."""
        if not isinstance(kept, bytes):
            return kept
        got = _UNPACK(kept)
        if isinstance(got, dict):
            return got
        return dict(zip(self.shapes[got[0]], got[1:], strict=True))


Store = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class CoreConfig:
    """What the core needs to know; ``riverwatch.context.Context.monitor_core`` builds it."""

    features: tuple[str, ...]
    drift_columns: tuple[str, ...]
    review_threshold: float = 0.5
    label_delay_s: float = 7 * DAY
    window_s: float = DAY
    window_size: int = 2000  # the count windows' rows (0: none)
    # rows a time window keeps (a uniform sample beyond; its counts stay exact), 0: all
    window_rows: int = 50_000
    # the ``transactions`` partitions a time window waits for (monitors.windows), 0: those seen
    sources: int = 0
    label_window: int = 2000
    warmup_s: float = 37 * DAY  # until every feature window can be full (FeatureSpec.full_days)
    reference_s: float = 7 * DAY  # event time the reference covers (a week: every weekday)
    reference_rows: int = 5000
    min_reference_rows: int = 200
    drift_min_psi: float = 0.1
    drift_alpha: float = 0.01
    segment_min_rows: int = 300
    fairness_confidence: float = 0.99
    fairness_tolerance: float = 0.02
    perf_confidence: float = 0.95
    max_group_values: int = 256  # values of an attribute tracked apart; the rest as "(other)"
    weights: dict[str, float] | None = None  # the champion's feature importance
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)  # monitors.dataquality


def default_frame(rows: Sequence[Row], names: Sequence[str]) -> pd.DataFrame:
    """Feature matrix of rows whose ``x`` holds exactly ``names`` (None reads as NaN).

    Filled row by row: a list of every row's ``x`` first held a list and a float object per
    value at once (~30 MB for a day's 50,000 rows, whose rows are unpacked one at a time).

    >>> default_frame([{"x": [1, None]}, {"x": [2.5, 3]}], ["a", "b"]).to_numpy().tolist()
    [[1.0, nan], [2.5, 3.0]]
    """
    out = np.empty((len(rows), len(names)), dtype=float)
    for i, r in enumerate(rows):
        out[i] = r["x"]
    return pd.DataFrame(out, columns=list(names), copy=False)
