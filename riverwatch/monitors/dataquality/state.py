"""What a :class:`monitors.dataquality.DataQuality` persists: its reference (or the reference
collected so far), the ranges and values it knows, the new values counted since the reference
and the rejected records' counters it read last, so a restarted monitor neither collects the
reference again nor counts the rejects since its last window twice or not at all. JSON-ready
and bounded as the reference is (``max_values`` values per field, ``max_fields`` attributes,
the contract's fields)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from riverwatch.monitors.dataquality.tally import Tally
from riverwatch.monitors.dataquality.unseen import Unseen

if TYPE_CHECKING:
    from riverwatch.monitors.dataquality import DataQuality


def dump(dq: DataQuality) -> dict[str, Any]:
    """``dq``'s state (see the module)."""
    return {
        "start": _finite(dq.start),
        "until": _finite(dq.until),
        "ref": None if dq.ref is None else dq.ref.to_dict(),
        "acc": dq._acc.to_dict(),
        "span": dq._span,
        "ranges": dq._ranges,
        "known": {f: None if v is None else sorted(v) for f, v in dq._known.items()},
        "unseen": dq.unseen.to_dict(),
        "rejects": None if dq._rejects is None else dict(dq._rejects),
    }


def load(dq: DataQuality, state: Mapping[str, Any]) -> None:
    """Set ``dq`` to :func:`dump`'s ``state``; raises (KeyError, TypeError, ValueError) before
    changing anything when it is not one."""
    ref = None if state["ref"] is None else Tally.from_dict(state["ref"])
    acc = Tally.from_dict(state["acc"])
    ranges = {str(c): [float(lo), float(hi)] for c, (lo, hi) in state["ranges"].items()}
    known = {str(f): None if v is None else {str(x) for x in v} for f, v in state["known"].items()}
    unseen = Unseen.from_dict(state.get("unseen") or {})  # (a state written before it: none)
    rejects = state["rejects"]
    read = None if rejects is None else {str(k): int(n) for k, n in rejects.items()}
    span = float(state["span"])
    start, until = _infinite(state["start"]), _infinite(state["until"])
    dq.start, dq.until = start, until
    dq.ref, dq._acc, dq._span = ref, acc, span
    dq._ranges, dq._known, dq._rejects, dq.unseen = ranges, known, read, unseen
    dq.volume = None
    dq._volume()
    dq._resumed = True  # the first window judged is partial: its volume is not judged


def _finite(t: float) -> float | None:
    return t if math.isfinite(t) else None  # JSON has no infinity


def _infinite(t: float | None) -> float:
    return math.inf if t is None else float(t)
