"""New values of a categorical field (:mod:`monitors.dataquality.unseen`): named once
``min_count`` events carried them since the reference, whatever windows they fell in; kept
across a restart, forgotten with the reference, bounded."""

from __future__ import annotations

import orjson

from riverwatch.monitors.dataquality import DataQuality
from riverwatch.monitors.dataquality.config import QualityConfig

USUAL = {"groups": {}, "dq": {"p": 0, "cat": {"merchant_category": "grocery"}}}
NEW = {"groups": {}, "dq": {"p": 0, "cat": {"merchant_category": "digital_goods"}}}
SUBJECT = "merchant_category:new_value"


def judged(cfg: QualityConfig | None = None) -> DataQuality:
    """Data quality with a reference of 5,000 rows of one merchant category."""
    dq = DataQuality(cfg or QualityConfig(), numeric=())
    dq.collect(0.0, 100.0)
    dq.window(0.0, 100.0, [USUAL] * 5000, None, {})
    assert dq.ready
    return dq


def new_found(dq: DataQuality, day: int, new: int, rows: int = 3000) -> list[dict]:
    """The new-value findings of one window of ``rows`` rows, ``new`` of them new."""
    start = 100.0 * (day + 1)
    check = dq.window(start, start + 100.0, [USUAL] * (rows - new) + [NEW] * new, None, {})
    return [f for f in check.findings if f["subject"] == SUBJECT]


def test_a_new_value_at_a_small_share_is_named_once_min_count_events_carry_it() -> None:
    """By default no share is asked of a new value (Evidently and NannyML flag one unseen
    value): 25 events of a new merchant category in a window of 5,000 (0.5%) are a finding."""
    (found,) = new_found(judged(), 0, 25, rows=5000)
    assert found["details"]["values"] == ["digital_goods"]
    assert found["details"]["since_reference"] == [25]
    assert "'digital_goods' (0.5%; 25 events since the reference)" in found["message"]


def test_a_new_value_under_min_count_a_window_is_named_once_min_count_came_since() -> None:
    """~20 new events a day, each day under min_count (20): named the day the count since the
    reference reaches 20 (counted per window, never named before; session 43's seed 37 of
    the card-testing scenario waited 7 days), and on each later window that carries it."""
    dq = judged()
    assert new_found(dq, 0, 12) == []
    assert new_found(dq, 1, 7) == []  # 19 since the reference
    assert new_found(dq, 2, 0) == []
    (found,) = new_found(dq, 3, 3)  # 22
    assert found["details"]["since_reference"] == [22]
    assert new_found(dq, 4, 0) == []  # a window without it says nothing of it
    (found,) = new_found(dq, 5, 1)
    assert found["details"]["since_reference"] == [23]


def test_a_stray_new_value_is_not_named() -> None:
    dq = judged()
    assert all(new_found(dq, d, 1) == [] for d in range(19))


def test_new_values_since_the_reference_survive_a_restart() -> None:
    dq = judged()
    assert new_found(dq, 0, 12) == []
    state = orjson.loads(orjson.dumps(dq.state()))
    again = DataQuality(QualityConfig(), numeric=())
    again.restore(state)
    (found,) = new_found(again, 1, 8)
    assert found["details"]["since_reference"] == [20]


def test_a_new_reference_forgets_the_new_values() -> None:
    dq = judged()
    assert new_found(dq, 0, 12) == []
    dq.collect(200.0, 300.0)
    dq.window(200.0, 300.0, [USUAL] * 5000, None, {})
    assert new_found(dq, 3, 12) == []  # 12 since this reference, not 24


def test_new_values_since_the_reference_stay_bounded() -> None:
    """Unique new values on every row of many windows: at most max_values are counted per
    field (the most frequent), and none of them is named."""
    dq = judged(QualityConfig(max_values=50))
    for d in range(20):
        rows = [
            {"groups": {}, "dq": {"p": 0, "cat": {"merchant_category": f"m{d}-{i}"}}}
            for i in range(1000)
        ]
        check = dq.window(100.0 * (d + 1), 100.0 * (d + 2), rows, None, {})
        assert [f for f in check.findings if f["subject"] == SUBJECT] == []
    assert len(dq.unseen.seen["merchant_category"]) <= 50
