"""Small helpers of the monitor: rows -> frames/arrays (its configurations come from the
composition root, riverwatch.context)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

from riverwatch.models.feature_set import row_features
from riverwatch.models.features import FEATURE_NAMES


def feature_frame(
    rows: Iterable[dict[str, Any]], names: Sequence[str] = FEATURE_NAMES
) -> pd.DataFrame:
    """The feature matrix of stored rows, one column per name in ``names``.

    Rows with attribute columns are read by their own names (``models.feature_set.row_features``),
    so rows stored under another RIVERWATCH_FEATURE_ATTRIBUTES fit; a column a row lacks is NaN.

    >>> row = {"x": [1.0] * len(FEATURE_NAMES) + [5.0], "attrs": ["risk"]}
    >>> feature_frame([row], ["amount", "attr_risk", "attr_other"]).values.tolist()
    [[1.0, 5.0, nan]]
    """
    rows = list(rows)
    if any(r.get("attrs") for r in rows):
        df = pd.DataFrame([row_features(r) for r in rows], dtype=float)
    else:  # the common case, and the fast one: every row has the built-in columns only
        df = pd.DataFrame([r["x"] for r in rows], columns=list(FEATURE_NAMES), dtype=float)
    return df if list(df.columns) == list(names) else df.reindex(columns=list(names))


def score_array(rows: Iterable[dict[str, Any]]) -> np.ndarray:
    """The combined scores of stored rows (NaN where missing)."""
    return np.asarray([r.get("score", math.nan) for r in rows], dtype=float)


def reference_rows(df: pd.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of the offline store's frame ``df`` (a champion's training window) as the
    monitor's reference takes them; ``label``: the label shift's (monitors.labelshift)."""
    X = df[list(names)].to_numpy(dtype=float).tolist()
    labels = df["label"].tolist() if "label" in df.columns else [None] * len(df)
    columns = (df["score"].tolist(), df["groups"].tolist(), df["epoch"].tolist(), labels)
    return [
        {"x": x, "score": score, "groups": orjson.loads(g) if isinstance(g, str) and g else {},
         "epoch": t, "label": lab}
        for x, score, g, t, lab in zip(X, *columns, strict=True)
    ]  # fmt: skip
