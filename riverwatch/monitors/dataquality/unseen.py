"""New values of a categorical field: values the reference never saw, counted since it.

A new value makes a finding once ``min_count`` events have carried it *since the reference*,
not within one window: a pattern that brings ~20 events of a new merchant category a day
(card testing at a small merchant base) may stay under 20 in any one day for a week, yet 20
events of a value a week's reference never held are news whatever windows they fell in (and
a stray value, or one a day, is still not, for weeks). A window names the new values it
carries whose count since the reference reached ``min_count`` (and that hold ``new_share``
of its events). Memory is bounded: ``max_values`` new values per field, the most frequent.

>>> u = Unseen()
>>> counts = {"channel": Counter({"pos": 90, "kiosk": 12})}
>>> u.findings(counts, {"channel": {"pos"}}, min_count=20, new_share=0.0, max_values=8)
[]
>>> [f["message"] for f in u.findings(counts, {"channel": {"pos"}}, 20, 0.0, 8)]
["new values of channel not seen in the reference: 'kiosk' (11.8%; 24 events since the reference)"]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from riverwatch.monitors.dataquality.tally import Finding


class Unseen:
    """The events per new value of each field since the reference (see the module)."""

    def __init__(self) -> None:
        self.seen: dict[str, Counter[str]] = {}

    def findings(
        self,
        values: Mapping[str, Counter[str]],
        known: Mapping[str, set[str] | None],
        min_count: int,
        new_share: float,
        max_values: int,
    ) -> list[Finding]:
        """Count a judged window's ``values`` (per field) not in ``known`` (the reference's;
        ``None``: not judged) and return its findings, one per field."""
        found = []
        for fld, counts in sorted(values.items()):
            ref = known.get(fld)
            if ref is None:  # not tracked, or too many values to say what is new
                continue
            new = {v: n for v, n in counts.items() if v not in ref}
            if not new:
                continue
            seen = self.seen.setdefault(fld, Counter())
            seen.update(new)
            if len(seen) > max_values:  # bounded: the most frequent new values are kept
                self.seen[fld] = seen = Counter(dict(seen.most_common(max_values)))
            total = counts.total()
            hits = [
                (v, n, seen[v])
                for v, n in sorted(new.items(), key=lambda vn: (-vn[1], vn[0]))
                if seen[v] >= min_count and n >= new_share * total
            ]
            if hits:
                found.append(_finding(fld, hits, total))
        return found

    def to_dict(self) -> dict[str, dict[str, int]]:
        """JSON-ready (the monitor persists it with the reference)."""
        return {fld: dict(c) for fld, c in self.seen.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, Any]]) -> Unseen:
        """What :meth:`to_dict` wrote (raises TypeError or ValueError when it is not)."""
        u = cls()
        u.seen = {str(f): Counter({str(v): int(n) for v, n in c.items()}) for f, c in d.items()}
        return u


def _finding(fld: str, hits: list[tuple[str, int, int]], total: int) -> Finding:
    shown = ", ".join(f"{v!r} ({n / total:.1%}; {s} events since the reference)"
                      for v, n, s in hits[:5])  # fmt: skip
    return {
        "subject": f"{fld}:new_value",
        "message": f"new values of {fld} not seen in the reference: {shown}",
        "details": {"field": fld, "quality": "new_value", "values": [v for v, _, _ in hits[:5]],
                    "shares": [n / total for _, n, _ in hits[:5]],
                    "since_reference": [s for _, _, s in hits[:5]], "events": total},
    }  # fmt: skip
