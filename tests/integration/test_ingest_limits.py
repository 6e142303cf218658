"""Issue 13 at the ingest API over real HTTP: bounded records (findings 1, 5, 7, 9) and capped
requests and answers (finding 4). Each bad record is a 422 entry naming index, field, reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from riverwatch.api.schemas import IngestResult
from riverwatch.core.settings import Settings
from tests.support.apiserver import Api, running_api

pytestmark = pytest.mark.integration
NDJSON = {"Content-Type": "application/x-ndjson"}
MAX_RECORDS, MAX_ERRORS = 10_000, 20  # the defaults of RIVERWATCH_API_MAX_RECORDS / _ERRORS


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with running_api(settings) as running:
        yield running


def tx(i: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "timestamp": 1_700_000_000 + i,
        "card_id": "c1",
        "terminal_id": "t1",
        "amount": 10.0,
        **changes,
    }


def refused(api: Api, records: list[dict[str, Any]], path: str = "/v1/transactions") -> Any:
    """POST records that must all be refused; the 422 answer's errors, one per record."""
    answer = api.http.post(path, json=records, headers=api.auth("writer"))
    assert answer.status_code == 422, answer.text
    body = IngestResult.model_validate(answer.json())
    assert (body.accepted, body.rejected) == (0, len(records))
    assert sorted({e.index for e in body.errors}) == list(range(len(records)))
    return body.errors


def test_huge_amounts_booleans_and_far_timestamps_get_422(api: Api) -> None:
    """Findings 1 and 9: 1e308 was accepted, year 0001 at +14:00 answered 500, true was 1.0,
    3e10 was read as milliseconds."""
    errors = refused(
        api,
        [
            tx(0, amount=1e308),
            tx(1, timestamp="0001-01-01T00:00:00+14:00"),
            tx(2, timestamp="9999-12-31T23:59:59Z"),
            tx(3, amount=True),
            tx(4, timestamp=3e10),
        ],
    )
    assert [(e.index, e.field) for e in errors] == [
        (0, "amount"),
        (1, "timestamp"),
        (2, "timestamp"),
        (3, "amount"),
        (4, "timestamp"),
    ]
    assert "RIVERWATCH_MAX_AMOUNT" in errors[0].reason
    assert "RIVERWATCH_MIN_EVENT_TIME" in errors[1].reason
    assert "read as seconds" in errors[4].reason
    labels = refused(api, [{"event_id": "e1", "label": True, "timestamp": 0}], "/v1/labels")
    assert labels[0].field == "label"


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "caf\u00e9"])
def test_ids_with_control_or_non_ascii_characters_get_422(api: Api, bad: str) -> None:
    """Finding 5: CR, LF, NUL and non-ASCII ids were accepted and later stalled the queue."""
    errors = refused(api, [tx(0, card_id=bad), tx(1, event_id=bad), tx(2, terminal_id=bad)])
    assert [e.field for e in errors] == ["card_id", "event_id", "terminal_id"]
    assert all("printable ASCII" in e.reason for e in errors)
    point = {"series_id": f"{bad}.requests", "timestamp": 0, "value": 1}
    assert refused(api, [point], "/v1/metrics")[0].field == "series_id"


def test_too_many_or_too_large_groups_and_attributes_get_422(api: Api) -> None:
    """Finding 7: 20,000 group keys, 50,000 attribute keys or a 900 kB value were accepted."""
    errors = refused(
        api,
        [
            tx(0, groups={f"g{i}": "x" for i in range(20_000)}),
            tx(1, attributes={f"a{i}": 1 for i in range(50_000)}),
            tx(2, groups={"age_band": "x" * 900_000}),
            tx(3, attributes={"note": "x" * 900_000}),
        ],
    )
    assert [(e.field, e.reason.split(" (")[-1]) for e in errors] == [
        ("groups", "RIVERWATCH_MAX_MAP_KEYS)"),
        ("attributes", "RIVERWATCH_MAX_MAP_KEYS)"),
        ("groups", "RIVERWATCH_MAX_VALUE_CHARS)"),
        ("attributes", "RIVERWATCH_MAX_VALUE_CHARS)"),
    ]
    ok = api.http.post(
        "/v1/transactions",
        json=tx(9, groups={"age_band": "65+"}, attributes={"device_risk": 0.5}),
        headers=api.auth("writer"),
    )
    assert ok.status_code == 202 and ok.json()["accepted"] == 1


def test_records_per_request_are_capped_before_they_are_parsed(api: Api) -> None:
    """Finding 4: 1,000,000 NDJSON lines of `1` got a 96.8 MB 422; over the cap is a 413."""
    cap = MAX_RECORDS
    h = {**api.auth("writer"), **NDJSON}
    lines = api.http.post("/v1/transactions", content=b"1\n" * (cap + 1), headers=h)
    assert lines.status_code == 413
    assert "RIVERWATCH_API_MAX_RECORDS" in lines.json()["detail"]
    many = api.http.post(
        "/v1/transactions",
        content=b"[" + b"1," * cap + b"1]",
        headers=h | {"Content-Type": "application/json"},
    )
    assert many.status_code == 413
    blank_lines_do_not_count = b"\n\n".join([orjson.dumps(tx(0))] * cap)
    assert (
        api.http.post("/v1/transactions", content=blank_lines_do_not_count, headers=h).json()[
            "accepted"
        ]
        == cap
    )


def test_the_error_list_is_capped_with_a_count_of_the_rest(api: Api) -> None:
    """Finding 4: 100k lines of `{}` (300 KB) got a 37 MB answer: now the first N errors."""
    cap = MAX_RECORDS
    h = {**api.auth("writer"), **NDJSON}
    answer = api.http.post("/v1/transactions", content=b"{}\n" * cap, headers=h)
    assert answer.status_code == 422 and len(answer.content) < 10_000
    body = IngestResult.model_validate(answer.json())
    assert body.rejected == cap and len(body.errors) == MAX_ERRORS
    assert body.errors_omitted == 5 * cap - MAX_ERRORS  # 5 missing fields each
    assert [e.index for e in body.errors] == sorted(e.index for e in body.errors)
    assert body.errors[0].index == 0 and body.errors[0].line == 1

    mixed = [tx(i) if i % 2 else tx(i, amount=-1) for i in range(100)]
    partial = api.http.post("/v1/transactions", json=mixed, headers=api.auth("writer")).json()
    assert (partial["accepted"], partial["rejected"], partial["errors_omitted"]) == (50, 50, 30)
    assert [e["index"] for e in partial["errors"]] == list(range(0, 40, 2))


def test_the_openapi_documents_the_answers(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    responses = spec["paths"]["/v1/transactions"]["post"]["responses"]
    # the route's own answers, and FastAPI's field list (api/openapi.py adds it to every 422)
    assert responses["422"]["content"]["application/json"]["schema"]["anyOf"] == [
        {"$ref": "#/components/schemas/IngestResult"},
        {"$ref": "#/components/schemas/Problem"},
        {"$ref": "#/components/schemas/HTTPValidationError"},
    ]
    assert "RIVERWATCH_API_MAX_RECORDS" in responses["413"]["description"]
    assert "errors_omitted" in spec["components"]["schemas"]["IngestResult"]["properties"]


def test_event_times_more_than_a_day_ahead_of_the_clock_get_422(api: Api) -> None:
    """A far-future event (inside the calendar window) would move the learner's and the
    monitor's event time ahead: refused by RIVERWATCH_MAX_FUTURE_SKEW_S (1 day by default),
    at every ingest route and at /v1/score; a few hours ahead (clock skew) are accepted."""
    ahead = time.time() + 2 * 86_400
    errors = refused(api, [tx(0, timestamp="2099-06-01T00:00:00Z"), tx(1, timestamp=ahead)])
    assert [e.field for e in errors] == ["timestamp", "timestamp"]
    assert all("RIVERWATCH_MAX_FUTURE_SKEW_S" in e.reason for e in errors)
    assert "the time 2099-06-01T00:00:00Z is more than 86400 s ahead" in errors[0].reason
    label = {"event_id": "e1", "label": 1, "timestamp": ahead * 1000}
    assert refused(api, [label], "/v1/labels")[0].field == "timestamp"
    point = {"series_id": "s.requests", "timestamp": "2099-01-01T00:00:00Z", "value": 1}
    assert refused(api, [point], "/v1/metrics")[0].field == "timestamp"
    score = api.http.post("/v1/score", json=tx(2, timestamp=ahead), headers=api.auth("reader"))
    assert score.status_code == 422, score.text
    assert "RIVERWATCH_MAX_FUTURE_SKEW_S" in score.text
    soon = api.http.post(
        "/v1/transactions", json=tx(3, timestamp=time.time() + 3600), headers=api.auth("writer")
    )
    assert soon.status_code == 202 and soon.json()["accepted"] == 1
