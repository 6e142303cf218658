"""Data quality per field against the reference: missing, invalid and out-of-range rates, new
categories, and the volume of each partition of ``transactions`` (a producer gone silent).

What a window of scored rows shows, per row (the scorer stores it with the feature row, see
:func:`monitors.dataquality.rows.row_quality`): the optional fields it lacked (``customer_id``,
``channel``, ``merchant_category``, and each configured feature attribute as
``attributes.<name>``), the attributes that were not numbers (invalid), its categorical values
and its partition; besides that, its ``groups`` (a tracked attribute absent: ``groups.<attr>``
missing) and its input columns (``amount``, ``attr_*``: outside the reference's range is out of
range, as Evidently's share of out-of-range values). The records rejected meanwhile (the API's
422, the workers' dead letters) come from cumulative counters per ``field|kind|reason``
(:mod:`core.rejects`), read once per window: the window counts their growth since the window of
its kind before; rejected labels and metric points likewise (their fields prefixed
``labels.``/``metrics.``), their rates over the records of their topic the workers counted.

The reference sums the windows of its period (the monitor's reference period). A window is
judged only after it. A rate *rises materially* when, with ``k`` of ``n`` events affected,
``k >= min_count``, the rate is ``min_abs`` above the reference's and ``1 + min_rel`` times it,
and a one-sided z-test against the reference rate clears ``z`` (so 0.3% -> 0.4% is nothing).
A value of a categorical field (``channel``, ``merchant_category``, each ``groups`` attribute)
not in the reference is *new*; a window carrying it makes a finding once ``min_count`` events
carried it since the reference (:mod:`monitors.dataquality.unseen`; and it holds
``new_share`` of the window, 0 by default: a value the reference never saw is news at any
share once ``min_count`` events carry it, as Evidently's value-list test and NannyML's
unseen-values calculator flag even one). A field whose reference holds more than ``max_values``
values is not judged for new values (its set would say little, and must stay bounded).

Memory is bounded whatever the input: at most ``max_fields`` ``groups`` attributes are
tracked (the most frequent in the reference), ``max_values`` values per field (and as many
new values counted since it), the partitions of the reference; a window's own tallies are
freed with it.

The parts: :mod:`monitors.dataquality.rows` (what a stored row records), ``config`` (the
thresholds), ``tally`` (the counts a window is judged by), ``unseen`` (new values since the
reference) and ``state`` (what the monitor
persists, so a restarted monitor keeps the reference).

>>> cfg = QualityConfig(min_count=5)
>>> dq = DataQuality(cfg, numeric=())
>>> dq.collect(0.0, 100.0)
>>> row = {"groups": {"region": "north"}, "dq": {"p": 0, "cat": {"channel": "pos"}}}
>>> _ = dq.window(0.0, 100.0, [row] * 500, None, {})
>>> rows = [row] * 400 + [{"groups": {}, "dq": {"p": 0, "miss": ["channel"]}}] * 100
>>> [f["subject"] for f in dq.window(100.0, 200.0, rows, None, {}).findings]
['channel:missing', 'groups.region:missing']
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.core.rejects import TOPICS, records_key
from riverwatch.monitors.dataquality.config import QualityConfig
from riverwatch.monitors.dataquality.rows import ATTR, OPTIONAL, tally_rows
from riverwatch.monitors.dataquality.state import dump, load
from riverwatch.monitors.dataquality.tally import (
    Finding,
    QualityCheck,
    Tally,
    listed,
    ranges_out,
    rejects_delta,
    window_tally,
)
from riverwatch.monitors.dataquality.unseen import Unseen
from riverwatch.monitors.quality import VolumeMonitor

Row = Mapping[str, Any]


class DataQuality:
    """Reference and judgement of data quality for one kind of window (see the module)."""

    def __init__(self, config: QualityConfig, numeric: Sequence[str], partitions: bool = True):
        self.c = config
        self.numeric = tuple(numeric)  # input columns checked against the reference's range
        # the volume per partition (time windows only: a count window holds the events in
        # their arrival order, and a worker may consume one partition's backlog before the
        # next, so its mix of partitions says nothing about producers)
        self.partitions = partitions
        self.start = self.until = math.inf
        self.ref: Tally | None = None  # the reference, once complete
        self._acc = Tally()
        self._span = 0.0
        self._ranges: dict[str, list[float]] = {}
        self._known: dict[str, set[str] | None] = {}  # field -> reference values (None: open)
        self.unseen = Unseen()  # events per new value since the reference
        self.volume: VolumeMonitor | None = None
        self._rejects: Mapping[str, int] | None = None
        # restored: the first window judged began before the restart, its events from then
        # on consumed by the monitor before (committed), so its volume says nothing
        self._resumed = False

    @property
    def ready(self) -> bool:
        """Whether windows are judged."""
        return self.ref is not None

    def collect(self, start: float, until: float) -> None:
        """Collect a new reference from the windows within ``[start, until)``."""
        self.start, self.until = start, until
        self.ref, self.volume = None, None
        self._acc, self._span, self._ranges, self._known = Tally(), 0.0, {}, {}
        self.unseen = Unseen()

    # -- one window --------------------------------------------------------------------------
    def window(
        self,
        start: float,
        end: float,
        rows: Sequence[Row],
        frame: Callable[[], pd.DataFrame] | None,
        rejects: Mapping[str, int],
        counts: Mapping[Any, int] | None = None,
        total: int | None = None,
    ) -> QualityCheck:
        """Take one closed window (``rejects``: the cumulative counters, read now); what it
        found when it is judged (nothing while the reference is collected). A window whose
        ``rows`` are a sample of its ``total`` events gives the :func:`rows.row_keys` counts
        of all of them in ``counts``; its out-of-range counts are the sample's, scaled."""
        delta = rejects_delta(rejects, self._rejects)
        self._rejects = dict(rejects)
        collecting = not self.ready and start >= self.start and end <= self.until
        judged = self.ready and start >= self.until
        if not (collecting or judged):
            if not self.ready and end > self.until:
                self._freeze(end)
            return QualityCheck()
        total = len(rows) if total is None else total
        keys = tally_rows(rows) if counts is None else counts
        t = window_tally(keys, total, delta, self._known, tracked=self.ready)
        values = self._numeric(rows, frame) if frame is not None else {}
        if collecting:
            self._accumulate(t, values, end - start)
            if end >= self.until:
                self._freeze(end)
            return QualityCheck()
        ranges_out(t, values, self._ranges, total / max(len(rows), 1))
        check = self._judge(t, end - start, volume=not self._resumed)
        self._resumed = False
        return check

    def _numeric(self, rows: Sequence[Row], frame: Callable[[], pd.DataFrame]) -> dict[str, Any]:
        if not self.numeric or not rows:
            return {}
        df = frame()
        out = {}
        for col in self.numeric:
            if col not in df:
                continue
            v = df[col].to_numpy(dtype=float, copy=True)
            if col.startswith("attr_"):  # a filled attribute is no value (counted above)
                name = ATTR + col[len("attr_") :]
                for i, r in enumerate(rows):
                    dq = r.get("dq") or {}
                    if name in dq.get("miss", ()) or name in dq.get("bad", ()):
                        v[i] = math.nan
            out[col] = v[np.isfinite(v)]
        return out

    def _accumulate(self, t: Tally, values: Mapping[str, np.ndarray], span: float) -> None:
        acc = self._acc
        acc.rows += t.rows
        acc.dq += t.dq
        acc.rejected += t.rejected
        acc.other.update(t.other)
        acc.partitions.update(t.partitions)
        for fld, counts in t.values.items():
            known = self._known.get(fld, set())
            if fld not in self._known and fld.startswith("groups."):
                n_groups = sum(f.startswith("groups.") for f in self._known)
                if n_groups >= self.c.max_fields:
                    continue  # bounded: the attributes first seen are tracked
            if known is not None:
                known |= set(counts)
                self._known[fld] = None if len(known) > self.c.max_values else known
        for (fld, kind), reasons in t.bad.items():
            if fld.startswith("groups.") and fld not in self._known:
                continue  # an attribute not tracked (bounded)
            acc.bad.setdefault((fld, kind), Counter()).update(reasons)
        for col, v in values.items():
            if len(v):
                lo, hi = self._ranges.get(col, [math.inf, -math.inf])
                self._ranges[col] = [min(lo, float(v.min())), max(hi, float(v.max()))]
        self._span += span

    def _freeze(self, end: float) -> None:
        acc = self._acc
        if acc.rows < self.c.min_rows:  # too few (a restart lost them): collect again
            self.collect(end, end + (self.until - self.start))
            return
        self.ref = acc
        self._volume()

    def _volume(self) -> None:
        acc = self.ref
        if acc is not None and self.partitions and len(acc.partitions) > 1:
            top = {f"partition={p}": n for p, n in acc.partitions.most_common(self.c.max_fields)}
            self.volume = VolumeMonitor.from_counts(top, self._span or 1.0)

    # -- persistence (monitors.dataquality.state) -------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a restarted monitor needs to go on (JSON-ready, bounded as the reference is)."""
        return dump(self)

    def restore(self, state: Mapping[str, Any]) -> None:
        """Go on from :meth:`state` (raises KeyError, TypeError or ValueError when it is not
        one, and changes nothing then)."""
        load(self, state)

    # -- judgement ---------------------------------------------------------------------------
    def _judge(self, t: Tally, span: float, volume: bool = True) -> QualityCheck:
        ref = self.ref
        assert ref is not None
        found: list[Finding] = []
        rates = {}
        for (fld, kind), reasons in sorted(t.bad.items()):
            k, n = reasons.total(), t.n(fld)
            dq_field = fld in OPTIONAL or fld.startswith(ATTR)
            if n <= 0 or (dq_field and ref.dq < self.c.min_rows):
                continue  # a reference of rows without row_quality says nothing of them
            k_ref, n_ref = (ref.bad.get((fld, kind)) or Counter()).total(), max(ref.n(fld), 1)
            rate, base = k / n, k_ref / n_ref
            reason, seen = reasons.most_common(1)[0]
            rates[f"{fld}:{kind}"] = {"rate": rate, "reference": base, "count": k, "n": n}
            if self._rises(k, n, k_ref, n_ref):
                label = kind.replace("_", "-")
                found.append({
                    "subject": f"{fld}:{kind}",
                    "message": f"{label} rate of {fld} rose to {rate:.1%} from {base:.1%} in "
                    f"the reference ({k} of {n} events; most seen: {reason}, {seen})",
                    "details": {"field": fld, "quality": kind, "rate": rate,
                                "reference_rate": base, "count": k, "events": n,
                                "reason": reason, "reasons": dict(reasons.most_common(5))},
                })  # fmt: skip
        c = self.c
        new = self.unseen.findings(t.values, self._known, c.min_count, c.new_share, c.max_values)
        found += new
        vol = None
        if self.volume is not None and t.dq and volume:
            vol = self.volume.compare([{"partition": p} for p in t.partitions.elements()], span)
            if len(vol.drops) == len(self.volume.rates):  # all silent: the "*" volume says so
                vol = type(vol)(vol.segments, [])
        report = {
            "events": t.rows + t.rejected,
            "rejected": t.rejected,
            # labels and metric points: rejected of all the records of the topic counted
            "rejected_other": {
                topic: {"rejected": t.other[records_key(topic)], "records": t.n(f"{topic}.")}
                for topic in TOPICS[1:]
                if t.n(f"{topic}.")
            },
            "rates": rates,
            "new_values": [f["details"] for f in new],
            "partitions": vol.to_dict() if vol else None,
            # what the policy turns into quality alerts (the dashboard's card lists them)
            "findings": listed(found, vol),
        }
        return QualityCheck(found, report, vol)

    def _rises(self, k: int, n: int, k_ref: int, n_ref: int) -> bool:
        c = self.c
        rate, base = k / n, k_ref / n_ref
        if k < c.min_count or rate - base < c.min_abs or rate < base * (1 + c.min_rel):
            return False
        p0 = (k_ref + 0.5) / (n_ref + 1)  # the reference's rate, never 0
        return (k - n * p0) / math.sqrt(n * p0 * (1 - p0)) >= c.z
