"""Data drift per feature (Evidently) and prediction drift on scores (PSI, Wasserstein).

This is the only module that imports Evidently, so an Evidently upgrade touches this file.
Evidently is imported on first use (it takes seconds; :func:`load_evidently` does it ahead),
never at import time.

:class:`DataDriftMonitor` keeps a sample of the champion's reference data (at most
``max_rows`` rows, seeded) as a ready Evidently dataset, and compares each window (sampled the
same way) column by column with Evidently's ``ValueDrift``: Evidently picks the test from the
column type and the reference size (Wasserstein distance for numerical columns and
Jensen-Shannon for categorical ones above 1000 reference rows, K-S / chi-square / Z below),
unless a method is configured. The share of drifted columns is computed here from those
results: the ``DataDriftPreset`` would run every column twice (once more for its
``DriftedColumnsCount``), doubling the cost for the same answer.

Prediction drift (:class:`ScoreDriftMonitor`, PSI and Wasserstein distance) lives in
:mod:`monitors.prediction` and is re-exported here.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.monitors.prediction import ScoreDrift, ScoreDriftMonitor

__all__ = ["ColumnDrift", "DataDrift", "DataDriftMonitor", "ScoreDrift", "ScoreDriftMonitor"]


@functools.cache
def load_evidently() -> Any:
    """Import Evidently (seconds) once; call it at start-up to keep that off the first window.

    Evidently's import of litestar (for its UI, unused here) warns ``LitestarDeprecationWarning:
    Call to deprecated function 'Dependency'``; that is about Evidently's code, not ours, so it
    is silenced for the import only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"litestar\.")
        import evidently
        from evidently.metrics import ValueDrift

    return evidently, ValueDrift


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column: Evidently's score, test, threshold and verdict.

    ``method`` is Evidently's name for the test: its display name when Evidently picked it
    (``"Wasserstein distance (normed)"``), the configured id otherwise (``"psi"``).
    """

    column: str
    kind: str  # "numerical" | "categorical"
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DataDrift:
    """Drift of a window against the reference, column by column."""

    columns: list[ColumnDrift]
    n_drifted: int
    share_drifted: float
    dataset_drift: bool  # share_drifted >= drift_share
    drift_share: float
    reference_rows: int
    window_rows: int
    skipped: list[str] = field(default_factory=list)  # columns with no usable value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _sample(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(df) <= max_rows:
        return df.reset_index(drop=True)
    return df.sample(n=max_rows, random_state=seed).reset_index(drop=True)


class DataDriftMonitor:
    """Per-column data drift of windows against a fixed reference sample.

    ``columns`` defaults to the reference's columns; non-numeric columns and those listed in
    ``categorical`` are categorical. ``method``/``num_method``/``cat_method`` and
    ``per_column_method`` name Evidently stat tests (e.g. ``"wasserstein"``, ``"psi"``,
    ``"ks"``, ``"jensenshannon"``); ``threshold`` overrides each test's default. A dataset
    drifts when at least ``drift_share`` of the columns drift (Evidently's rule).
    """

    def __init__(
        self,
        reference: pd.DataFrame,
        columns: Sequence[str] | None = None,
        *,
        categorical: Sequence[str] = (),
        max_rows: int = 5000,
        drift_share: float = 0.5,
        method: str | None = None,
        num_method: str | None = None,
        cat_method: str | None = None,
        per_column_method: dict[str, str] | None = None,
        threshold: float | None = None,
        seed: int = 0,
    ):
        self.columns = list(reference.columns if columns is None else columns)
        if not self.columns or len(reference) == 0:
            raise ValueError("the reference needs at least one column and one row")
        self.max_rows, self.drift_share, self.seed = max_rows, drift_share, seed
        self.kinds = {
            c: "numerical"
            if c not in categorical and pd.api.types.is_numeric_dtype(reference[c])
            else "categorical"
            for c in self.columns
        }
        per = per_column_method or {}
        self.methods = {
            c: per.get(c) or method or (num_method if k == "numerical" else cat_method)
            for c, k in self.kinds.items()
        }
        self.threshold = threshold
        self.reference = _sample(reference[self.columns], max_rows, seed)
        # Evidently cannot test a column with no value (and warns computing its statistics).
        self._usable = [c for c in self.columns if self.reference[c].notna().any()]
        self._reference_ds = self._dataset(self.reference, self._usable) if self._usable else None

    def _dataset(self, df: pd.DataFrame, columns: list[str]) -> Any:
        ev, _ = load_evidently()
        definition = ev.DataDefinition(
            numerical_columns=[c for c in columns if self.kinds[c] == "numerical"],
            categorical_columns=[c for c in columns if self.kinds[c] == "categorical"],
        )
        return ev.Dataset.from_pandas(df[columns], data_definition=definition)

    def compare(self, window: pd.DataFrame) -> DataDrift:
        """Drift of ``window`` (sampled to ``max_rows``) against the reference."""
        ev, value_drift = load_evidently()
        cur = _sample(window[self.columns], self.max_rows, self.seed)
        cur = cur.replace([np.inf, -np.inf], np.nan)
        usable = [c for c in self.columns if c in self._usable and cur[c].notna().any()]
        results: list[ColumnDrift] = []
        if usable:
            metrics = {
                c: value_drift(column=c, method=self.methods[c], threshold=self.threshold)
                for c in usable
            }
            snapshot = ev.Report(list(metrics.values()), include_tests=True).run(
                self._dataset(cur, usable), self._reference_ds
            )
            for c, metric in metrics.items():
                res = snapshot.context.get_metric_result(metric)
                params = res.metric_value_location.metric.params
                results.append(
                    ColumnDrift(
                        column=c,
                        kind=self.kinds[c],
                        method=str(params.get("method")),
                        score=float(res.value),
                        threshold=float(params.get("threshold", math.nan)),
                        drifted=any(t.status.value == "FAIL" for t in res.tests),
                    )
                )
        n_drifted = sum(r.drifted for r in results)
        share = n_drifted / len(results) if results else 0.0
        return DataDrift(
            columns=results,
            n_drifted=n_drifted,
            share_drifted=share,
            dataset_drift=bool(results) and share >= self.drift_share,
            drift_share=self.drift_share,
            reference_rows=len(self.reference),
            window_rows=len(cur),
            skipped=[c for c in self.columns if c not in usable],
        )
