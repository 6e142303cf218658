"""The counts data quality judges by: a window's (or the reference's summed) :class:`Tally`,
the rejected records' growth, and a judged window's :class:`QualityCheck`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riverwatch.core.rejects import (
    INVALID,
    MISSING,
    OUT_OF_RANGE,
    RECORDS,
    TOPICS,
    records_key,
    topic_of,
    valid_key,
)
from riverwatch.monitors.dataquality.rows import ATTR, OPTIONAL
from riverwatch.monitors.quality import VolumeCheck

Finding = dict[str, Any]


@dataclass
class Tally:
    """One window's (or the reference's summed) counts."""

    rows: int = 0  # scored rows
    dq: int = 0  # ... carrying row_quality
    rejected: int = 0  # transactions rejected
    # labels and metric points: ``records.<topic>`` rejected, ``valid.<topic>`` passed
    other: Counter[str] = field(default_factory=Counter)
    bad: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)  # -> reasons
    values: dict[str, Counter[str]] = field(default_factory=dict)
    partitions: Counter[str] = field(default_factory=Counter)

    def n(self, fld: str) -> int:
        """The events a rate of ``fld`` is over (rejected records count for every field; a
        label's or metric point's field: the records of its topic, passed or rejected)."""
        topic = topic_of(fld)
        if topic != "transactions":
            return self.other[valid_key(topic)] + self.other[records_key(topic)]
        dq_field = fld in OPTIONAL or fld.startswith(ATTR)
        return (self.dq if dq_field else self.rows) + self.rejected

    def add(self, fld: str, kind: str, reason: str, count: int = 1) -> None:
        """Count ``count`` events whose ``fld`` was ``kind`` for ``reason``."""
        self.bad.setdefault((fld, kind), Counter())[reason] += count

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the monitor persists the reference, :meth:`DataQuality.state`).

        >>> t = Tally(rows=3, dq=2, rejected=1)
        >>> t.add("amount", "missing", "absent", 2)
        >>> t.values["channel"] = Counter({"pos": 2})
        >>> Tally.from_dict(t.to_dict()) == t
        True
        """
        return {
            "rows": self.rows,
            "dq": self.dq,
            "rejected": self.rejected,
            "other": dict(self.other),
            "bad": [[fld, kind, dict(reasons)] for (fld, kind), reasons in self.bad.items()],
            "values": {fld: dict(counts) for fld, counts in self.values.items()},
            "partitions": dict(self.partitions),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tally:
        """The tally :meth:`to_dict` wrote."""
        return cls(
            rows=int(d["rows"]),
            dq=int(d["dq"]),
            rejected=int(d["rejected"]),
            other=Counter(d.get("other") or {}),
            bad={(str(f), str(k)): Counter(reasons) for f, k, reasons in d["bad"]},
            values={fld: Counter(counts) for fld, counts in d["values"].items()},
            partitions=Counter(d["partitions"]),
        )


@dataclass(frozen=True)
class QualityCheck:
    """One judged window: findings (``subject``, ``message``, ``details`` each; the policy
    makes ``quality`` alerts of them), a JSON-ready report, the partitions' volume."""

    findings: list[Finding] = field(default_factory=list)
    report: dict[str, Any] | None = None
    volume: VolumeCheck | None = None


def rejects_delta(now: Mapping[str, int], before: Mapping[str, int] | None) -> dict[str, int]:
    """The growth of the rejected records' cumulative counters ``now`` since ``before``."""
    if before is None:
        return {}  # the first read is the baseline
    out = {}
    for k, v in now.items():
        d = v - before.get(k, 0)
        out[k] = v if d < 0 else d  # a counter that went back (Redis flushed) starts anew
    return {k: v for k, v in out.items() if v > 0}


def listed(found: list[Finding], volume: VolumeCheck | None) -> list[dict[str, str]]:
    """A judged window's findings and partitions gone silent, as ``subject``/``message``
    (its report's ``findings``, which the dashboard lists)."""
    out = [{"subject": f["subject"], "message": f["message"]} for f in found]
    for d in volume.drops if volume else []:
        seg, obs, exp = d["segment"], d["observed"], d["expected"]
        out.append({"subject": seg, "message": f"volume of {seg} fell to {obs:.0f} from "
                    f"{exp:.0f} expected"})  # fmt: skip
    return out


def window_tally(
    counts: Mapping[Any, int],
    rows: int,
    rejects: Mapping[str, int],
    known: Mapping[str, Any],
    tracked: bool,
) -> Tally:
    """A window's tally from its rows' :func:`rows.row_keys` counts (``rows`` of them) and
    the rejected records' growth ``rejects``; ``known``: the fields the reference tracks,
    whose ``groups`` attributes alone count once ``tracked`` (collecting: every one)."""
    t = Tally(rows=rows, rejected=rejects.get(RECORDS, 0))
    for topic in TOPICS[1:]:  # labels and metric points: their own denominators
        for key in (records_key(topic), valid_key(topic)):
            if rejects.get(key):
                t.other[key] = rejects[key]
    for key, n in counts.items():
        match key:
            case ("g", a, v) if not tracked or f"groups.{a}" in known:
                t.values.setdefault(f"groups.{a}", Counter())[v] += n
            case ("dq",):
                t.dq += n
            case ("p", p):
                t.partitions[p] += n
            case ("miss", fld):
                t.add(fld, MISSING, "absent", n)
            case ("bad", fld):
                t.add(fld, INVALID, "not a finite number or bool", n)
            case ("cat", fld, v):
                t.values.setdefault(fld, Counter())[v] += n
    attrs = {f for f in known if f.startswith("groups.")}
    if not tracked:
        attrs |= {f for f in t.values if f.startswith("groups.")}
    for fld in attrs:  # a tracked attribute the window lacks entirely is missing too
        if (absent := t.rows - (t.values.get(fld) or Counter()).total()) > 0:
            t.add(fld, MISSING, "absent", absent)
    for key, n in rejects.items():
        parts = key.split("|")
        if len(parts) == 3 and parts[1] in (MISSING, INVALID, OUT_OF_RANGE):
            t.add(parts[0], parts[1], f"rejected: {parts[2]}", n)
    return t


def ranges_out(
    t: Tally, values: Mapping[str, np.ndarray], ranges: Mapping[str, list[float]], scale: float
) -> None:
    """Count into ``t`` the ``values`` (per input column) outside the reference's ``ranges``
    (``values`` of a sample: counts scaled by ``scale``, the window's events per sampled row)."""
    for col, v in values.items():
        if col not in ranges:
            continue
        lo, hi = ranges[col]
        fld = "amount" if col == "amount" else ATTR + col[len("attr_") :]
        if (below := round(int((v < lo).sum()) * scale)) > 0:
            t.add(fld, OUT_OF_RANGE, f"below the reference's minimum {lo:g}", below)
        if (above := round(int((v > hi).sum()) * scale)) > 0:
            t.add(fld, OUT_OF_RANGE, f"above the reference's maximum {hi:g}", above)
