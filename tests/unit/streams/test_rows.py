"""Stored feature rows checked before the learner or the monitor uses any row of a batch."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.streams.rows import ADDED, UnusableRow, learnable, monitorable

N = len(FEATURE_NAMES)


def row(**over: Any) -> dict[str, Any]:
    base = {
        "event_id": "e1", "card_id": "c", "terminal_id": "t", "epoch": 1.7e9,
        "x": [float(i) for i in range(N)], "groups": {"region": "n"}, "score": 0.2,
        "online_score": 0.1, "batch_score": None, "shadow_score": None, "decision": "approve",
        "dq": {"p": 0},
    }  # fmt: skip
    return {**base, **over}


def test_a_row_as_the_scorer_stores_it_is_learnable_and_monitorable() -> None:
    good = row()
    got, x = learnable("e1", orjson.dumps(good))
    assert got == good and list(x) == list(FEATURE_NAMES) and x["amount"] == good["x"][0]
    assert monitorable("e1", orjson.dumps(good)) == good
    with_attr = row(x=[1.0] * (N + 1), attrs=["risk"])
    assert learnable("e1", orjson.dumps(with_attr))[1]["attr_risk"] == 1.0
    assert monitorable("e1", orjson.dumps(with_attr))["attrs"] == ["risk"]


BROKEN: list[tuple[bytes, str]] = [
    (b"not json", "is not JSON"),
    (b"[1, 2]", "is not an object"),
    (orjson.dumps(row(epoch="yesterday")), "epoch is not a number"),
    (orjson.dumps({k: v for k, v in row().items() if k != "epoch"}), "epoch is not a number"),
    (orjson.dumps(row(x="oops")), f"x is not a list of {N} values"),
    (orjson.dumps(row(x=[1.0] * (N - 1))), f"x is not a list of {N} values"),
    (orjson.dumps(row(x=[1.0] * N, attrs=["risk"])), f"x is not a list of {N + 1} values"),
    (orjson.dumps(row(x=["a"] * N)), "x holds a value that is not a number"),
    (orjson.dumps(row(x=[True] * N)), "x holds a value that is not a number"),
    (orjson.dumps(row(attrs="risk")), "attrs is not a list of names"),
]


@pytest.mark.parametrize(("raw", "why"), BROKEN)
def test_a_row_neither_can_use_says_why(raw: bytes, why: str) -> None:
    for check in (learnable, monitorable):
        with pytest.raises(UnusableRow, match=f"^the feature row of e9.*{why}"):
            check("e9", raw)


def test_a_label_window_does_not_read_x() -> None:
    raw = orjson.dumps(row(x=[]))
    assert monitorable("e1", raw, features=False)["x"] == []
    with pytest.raises(UnusableRow, match="x is not a list"):
        monitorable("e1", raw)
    with pytest.raises(UnusableRow, match="groups is not an object"):
        monitorable("e1", orjson.dumps(row(x=[], groups="n")), features=False)


def test_nulls_in_x_are_missing_values_to_the_monitor_but_not_learnable() -> None:
    raw = orjson.dumps(row(x=[None] + [1.0] * (N - 1)))
    assert monitorable("e1", raw)["x"][0] is None
    with pytest.raises(UnusableRow, match="x holds a value that is not a number"):
        learnable("e1", raw)


def test_what_only_the_learner_needs_and_what_only_the_monitor_needs() -> None:
    no_terminal = orjson.dumps(row(terminal_id=None))
    monitorable("e1", no_terminal)
    with pytest.raises(UnusableRow, match="terminal_id is not a string"):
        learnable("e1", no_terminal)
    for over, why in [
        ({"groups": "n"}, "groups is not an object"),
        ({"dq": [0]}, "dq is not an object"),
        ({"score": "high"}, "score is not a number"),
        ({"decision": 1}, "decision is not a string"),
    ]:
        raw = orjson.dumps(row(**over))
        learnable("e1", raw)
        with pytest.raises(UnusableRow, match=why):
            monitorable("e1", raw)


def test_a_row_stored_before_the_card_maximums_reads_them_as_missing() -> None:
    """An upgrade leaves a label delay's worth of rows of the older width waiting for labels."""
    old = [float(i) for i in range(N - len(ADDED))] + [7.0]  # an attribute column after them
    stored = orjson.dumps(row(x=old, attrs=["risk"]))
    _, x = learnable("e1", stored)
    assert not set(ADDED) & set(x)  # missing: not learned from, not zero
    assert x["amount"] == 0.0 and x["attr_risk"] == 7.0
    assert x["term_risk_30d"] == old[FEATURE_NAMES.index("term_risk_30d")]
    got = monitorable("e1", stored)["x"]
    assert len(got) == N + 1 and got[-1] == 7.0
    assert [got[FEATURE_NAMES.index(a)] for a in ADDED] == [None] * len(ADDED)
    with pytest.raises(UnusableRow, match="x is not a list"):  # any other width still is not
        learnable("e1", orjson.dumps(row(x=[1.0] * (N - len(ADDED) - 1))))
