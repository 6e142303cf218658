"""From a fraud probability to a decision.

>>> decide(np.array([0.1, 0.6, 0.95]), review=0.5, decline=0.8).tolist()
['approve', 'review', 'decline']
"""

from __future__ import annotations

import numpy as np

DECISIONS = ("approve", "review", "decline")


def decide(scores: np.ndarray, review: float, decline: float) -> np.ndarray:
    """Vectorized thresholds: score >= decline -> decline, >= review -> review, else approve."""
    idx = (scores >= review).astype(int) + (scores >= decline).astype(int)
    return np.array(DECISIONS, dtype=object)[idx]
