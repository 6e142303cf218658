"""The ingest answer's error list (api/ingest.py Outcome): the first N errors by record index."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from riverwatch.api.ingest import Outcome, parse_records


def test_the_first_errors_by_index_are_kept_and_the_rest_counted() -> None:
    outcome = Outcome(max_errors=3)
    for index in (2, 5, 7, 9):  # validation errors, in index order
        outcome.reject(index, "amount", "bad")
    outcome.reject(0, "(record)", "refused by the broker")  # broker refusals come after
    outcome.reject(6, "(record)", "refused by the broker")
    assert [e["index"] for e in outcome.errors] == [0, 2, 5]
    assert (outcome.rejected, outcome.errors_omitted) == (6, 3)
    assert outcome.answer() == {
        "accepted": 0,
        "rejected": 6,
        "errors": outcome.errors,
        "errors_omitted": 3,
    }


def test_records_are_counted_before_they_are_parsed() -> None:
    body = b"\n".join([b"not json"] * 11)
    with pytest.raises(HTTPException) as caught:  # 413, not 422 for line 1
        parse_records(body, "application/x-ndjson", max_records=10)
    assert caught.value.status_code == 413
    records, lines = parse_records(
        b"\n \n".join([b"{}"] * 10) + b"\n\n", "application/x-ndjson", 10
    )
    assert len(records) == 10 and lines == list(range(1, 20, 2))
    with pytest.raises(HTTPException) as too_many:
        parse_records(b"[" + b"{}," * 10 + b"{}]", "application/json", max_records=10)
    assert too_many.value.status_code == 413
