"""Every transaction's features recomputed offline from a history, in processing order: what
backfills and the skew tests compare the stream with. The features themselves are
:mod:`riverwatch.models.features`' (this replays its ``step`` and ``apply_terminal``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from riverwatch.models.features import Buckets, FeatureSpec, apply_terminal, step


def replay(spec: FeatureSpec, events: Iterable[tuple[Any, ...]]) -> dict[str, list[float]]:
    """Recompute every transaction's features offline from a history, in processing order.

    ``events`` are ``("tx", event_id, epoch, card_id, terminal_id, amount)`` and
    ``("label", event_id, label)`` tuples in the order the system processed them. A repeated
    transaction or label is ignored, as online. Gives the online features exactly: this is
    what backfills and the skew test use.

    >>> from riverwatch.models.features import FEATURE_INDEX
    >>> spec = FeatureSpec(3600, 0)
    >>> out = replay(spec, [("tx", "a", 0.0, "c", "t", 5.0), ("label", "a", 1),
    ...                     ("tx", "b", 60.0, "c", "t", 7.0)])
    >>> out["b"][FEATURE_INDEX["card_n_1d"]], out["b"][FEATURE_INDEX["term_risk_1d"]]
    (2.0, 1.0)
    """
    cards: dict[str, Buckets] = defaultdict(dict)
    terms: dict[str, Buckets] = defaultdict(dict)
    where: dict[str, tuple[str, int]] = {}
    labelled: set[str] = set()
    out: dict[str, list[float]] = {}
    for ev in events:
        if ev[0] == "tx":
            _, eid, epoch, card, terminal, amount = ev
            if eid in out:
                continue
            out[eid] = step(spec, epoch, amount, cards[card], terms[terminal])
            where[eid] = (terminal, spec.bucket(epoch))
        elif ev[0] == "label":
            _, eid, label = ev
            if eid in labelled or eid not in where:
                continue
            labelled.add(eid)
            if label:
                terminal, b = where[eid]
                apply_terminal(terms[terminal], b, frauds=1.0, count=0.0)
        else:
            raise ValueError(f"unknown history event {ev[0]!r}")
    return out
