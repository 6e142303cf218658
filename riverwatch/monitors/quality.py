"""Data quality against the reference: the volume of each segment (a producer gone silent).

A segment is ``"*"`` (every event) or one ``attribute=value`` of the events' ``groups``. The
reference gives each segment's rate (events per second of event time); a window whose count
falls below ``1 - min_drop`` of what that rate expects, by at least ``z`` Poisson standard
deviations, is a volume drop. A segment missing from the window entirely counts as zero.

>>> ref = [{"region": "north"}] * 600 + [{"region": "south"}] * 400
>>> vm = VolumeMonitor(ref, span_s=1000.0)
>>> res = vm.compare([{"region": "north"}] * 610, span_s=1000.0)
>>> [(d["segment"], d["observed"], round(d["expected"])) for d in res.drops]
[('region=south', 0, 400)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ALL = "*"


def _counts(groups: Sequence[Mapping[str, str] | None]) -> Counter[str]:
    c: Counter[str] = Counter({ALL: len(groups)})
    for g in groups:
        for a, v in (g or {}).items():
            c[f"{a}={v}"] += 1
    return c


@dataclass(frozen=True)
class VolumeCheck:
    """Per-segment volume of a window against the reference's rates."""

    segments: dict[str, dict[str, float]]
    drops: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class VolumeMonitor:
    """Reference rates per segment; :meth:`compare` finds the segments that fell silent."""

    def __init__(
        self,
        groups: Sequence[Mapping[str, str] | None],
        span_s: float,
        *,
        scale: float = 1.0,
        min_drop: float = 0.5,
        z: float = 5.0,
        max_segments: int = 256,
    ):
        counts = _counts(groups).most_common(max_segments + 1)
        self.rates = {seg: n * scale / span_s for seg, n in counts}
        self.min_drop, self.z = min_drop, z

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], span_s: float, **kw: Any) -> VolumeMonitor:
        """Reference rates from counts per segment over ``span_s`` (no ``"*"`` unless given)."""
        vm = cls([], span_s, **kw)
        vm.rates = {seg: n / span_s for seg, n in counts.items()}
        return vm

    def compare(
        self,
        groups: Sequence[Mapping[str, str] | None],
        span_s: float,
        counts: Mapping[str, int] | None = None,
    ) -> VolumeCheck:
        """The window's count per reference segment (``counts``, when given: exact counts
        per segment of a window whose ``groups`` are a sample), and the drops among them."""
        seen = _counts(groups) if counts is None else counts
        segs, drops = {}, []
        for seg, rate in self.rates.items():
            exp, obs = rate * span_s, seen.get(seg, 0)
            segs[seg] = {"expected": exp, "observed": float(obs)}
            if (
                exp > 0
                and obs < (1 - self.min_drop) * exp
                and (exp - obs) / math.sqrt(exp) >= self.z
            ):
                drops.append({"segment": seg, "observed": obs, "expected": exp, "ratio": obs / exp})
        return VolumeCheck(segs, drops)
