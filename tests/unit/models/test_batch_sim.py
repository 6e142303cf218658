"""Labeled offline-store rows from the simulator, as the running system would store them.

``labeled_rows`` replays the simulator's events in order through ``models.features.step`` and
adds a fraud to its terminal's bucket only when the label arrives, exactly as the label
learner does, so the rows carry the features the scorer would have computed. Other tests
(unit and integration) import it to get realistic training data without a broker.
"""

from __future__ import annotations

import numpy as np

from riverwatch.models import features
from tests.support.builders import START, labeled_rows


def test_rows_look_like_the_handbook_data() -> None:
    rows = labeled_rows(n_days=20, customers=200, terminals=400)
    assert len(rows) > 2000
    y = np.array([r["label"] for r in rows])
    assert 0.002 < y.mean() < 0.05  # the Handbook's fraud rate is ~0.5-1%
    assert all(set(features.FEATURE_NAMES) <= set(r) for r in rows[:10])
    # a finite simulation labels every transaction, the last week's at the end
    assert max(r["epoch"] for r in rows) < START.timestamp() + 20 * 86_400
    # delayed terminal risk: zero during the first delay, non-zero somewhere afterwards
    assert all(
        r["term_risk_7d"] == 0.0 for r in rows if r["epoch"] < START.timestamp() + 7 * 86_400
    )
    assert any(r["term_risk_7d"] > 0 for r in rows)
