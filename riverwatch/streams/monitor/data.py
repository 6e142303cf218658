"""Small helpers of the monitor: rows -> frames/arrays (its configurations come from the
composition root, riverwatch.context)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Sized
from typing import Any, overload

import numpy as np
import orjson
import pandas as pd

from riverwatch.models.feature_set import row_names
from riverwatch.models.features import FEATURE_NAMES


def feature_frame(
    rows: Iterable[dict[str, Any]], names: Sequence[str] = FEATURE_NAMES
) -> pd.DataFrame:
    """The feature matrix of stored rows, one column per name in ``names``.

    Rows with attribute columns are read by their own names (``models.feature_set.row_features``),
    so rows stored under another RIVERWATCH_FEATURE_ATTRIBUTES fit; a column a row lacks is NaN,
    as is None. A row without attributes may hold fewer values than the built-in columns (rows
    stored before a feature was added: the rest are NaN), never more.

    >>> row = {"x": [1.0] * len(FEATURE_NAMES) + [5.0], "attrs": ["risk"]}
    >>> feature_frame([row], ["amount", "attr_risk", "attr_other"]).values.tolist()
    [[1.0, 5.0, nan]]
    >>> feature_frame([{"x": [2, None]}], FEATURE_NAMES[:3]).values.tolist()
    [[2.0, nan, nan]]

    One pass, each row read once and filled into one array: a closed time window's rows are
    unpacked as they are read (monitors.lazy.Unpacked), and a list of them, or of every
    row's ``x``, held a day's 50,000 rows as objects at once (~97 and ~30 MB).
    """
    names = list(names)
    rows = rows if isinstance(rows, Sized) else list(rows)
    out = np.full((len(rows), len(names)), math.nan)
    at = {n: j for j, n in enumerate(names)}
    same, nf = tuple(names) == tuple(FEATURE_NAMES), len(FEATURE_NAMES)
    plans: dict[tuple[str, ...], tuple[int, list[int], list[int]]] = {}
    for i, r in enumerate(rows):
        x, attrs = r["x"], tuple(r.get("attrs") or ())
        if not attrs:
            if len(x) > nf:
                raise ValueError(f"a feature row of {len(x)} values, without attributes")
            if same:  # the common case
                out[i, : len(x)] = x
                continue
            x = [*x, *[None] * (nf - len(x))]
        if (plan := plans.get(attrs)) is None:
            own = row_names(r)
            src = [k for k, n in enumerate(own) if n in at]
            plan = plans[attrs] = (len(own), src, [at[own[k]] for k in src])
        n_own, src, dst = plan
        if len(x) != n_own:
            raise ValueError(f"a feature row of {len(x)} values for {n_own} names")
        out[i, dst] = [x[k] for k in src]
    return pd.DataFrame(out, columns=names, copy=False)


def score_array(rows: Iterable[dict[str, Any]]) -> np.ndarray:
    """The combined scores of stored rows (NaN where missing)."""
    return np.asarray([r.get("score", math.nan) for r in rows], dtype=float)


# the offline store's columns the reference takes besides the features (reference_rows)
REFERENCE_COLUMNS = ("score", "groups", "epoch", "label")


class FrameRows(Sequence[dict[str, Any]]):
    """The rows of an offline-store frame as the monitor's reference takes them, each made
    when it is read: a champion's training window is up to RIVERWATCH_TRAIN_MAX_ROWS rows, of
    which the reference keeps ``RIVERWATCH_MONITOR_REFERENCE_ROWS`` (5,000), and as dicts they
    were ~1.3 KB each at once in the helper (~250 MB for 190,000 rows) on every promotion.

    >>> df = pd.DataFrame({"a": [1.0, 2.0], "score": [0.1, 0.2], "groups": ['{"r":"n"}', ""],
    ...                    "epoch": [5.0, 6.0], "label": [0, 1]})
    >>> rows = FrameRows(df, ["a"])
    >>> len(rows), rows[1], rows[0]["groups"]
    (2, {'x': [2.0], 'score': 0.2, 'groups': {}, 'epoch': 6.0, 'label': 1}, {'r': 'n'})
    """

    def __init__(self, df: pd.DataFrame, names: Sequence[str]):
        self._x = df[list(names)].to_numpy(dtype=float)
        self._score, self._groups = df["score"].tolist(), df["groups"].tolist()
        self._epoch = df["epoch"].tolist()
        self._label = df["label"].tolist() if "label" in df.columns else [None] * len(df)

    def __len__(self) -> int:
        return len(self._epoch)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        g = self._groups[i]
        return {
            "x": self._x[i].tolist(), "score": self._score[i],
            "groups": orjson.loads(g) if isinstance(g, str) and g else {},
            "epoch": self._epoch[i], "label": self._label[i],
        }  # fmt: skip


def reference_rows(df: pd.DataFrame, names: Sequence[str]) -> FrameRows:
    """The rows of the offline store's frame ``df`` (a champion's training window) as the
    monitor's reference takes them; ``label``: the label shift's (monitors.labelshift)."""
    return FrameRows(df, names)
