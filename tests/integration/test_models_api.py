"""The models API over real HTTP against the real broker and Valkey."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import consumer
from riverwatch.core.settings import Settings
from riverwatch.models.batch import train_batch
from riverwatch.stores.registry import Registry
from tests.support.apiserver import Api, running_api

pytestmark = pytest.mark.integration


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with running_api(settings) as running:
        yield running


def register(reg: Registry, ap: float) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    model = train_batch(X, (X[:, 0] > 1.0).astype(int), ("a", "b"), max_iter=5)
    return reg.register(
        model,
        data_window=(0.0, 10.0),
        holdout_window=(10.0, 20.0),
        metrics={"auc": 0.9, "ap": ap, "cp@100": 0.25},
        features=("a", "b"),
    ).name


def control_records(api: Api, want: int) -> list[dict[str, object]]:
    """The first ``want`` records of the control topic (one partition)."""
    c = consumer(
        kafka_config(api.settings), f"{api.settings.topic_prefix}ctl-{uuid.uuid4().hex[:6]}"
    )
    c.assign([TopicPartition(api.names.topic("control"), 0, OFFSET_BEGINNING)])
    got: list[dict[str, object]] = []
    try:
        for _ in range(100):
            got += [orjson.loads(m.value() or b"") for m in c.consume(10, 0.2) if m.error() is None]
            if len(got) >= want:
                break
    finally:
        c.close()
    assert len(got) >= want, got
    return got


def test_models_are_listed_promoted_and_rolled_back(api: Api) -> None:
    get, post = api.http.get, api.http.post
    empty = get("/v1/models", headers=api.auth("reader"))
    assert empty.status_code == 200
    assert empty.json() == {"champion": None, "challenger": None, "versions": [], "audit": []}
    assert get("/v1/models", headers=api.auth("writer")).status_code == 403

    reg = Registry(api.redis, api.names, api.settings.data_dir)
    first, second = register(reg, ap=0.6), register(reg, ap=0.7)
    reg.promote(first, "seed")
    body = get("/v1/models", headers=api.auth("reader")).json()
    assert body["champion"]["name"] == first and body["challenger"]["name"] == second
    assert [v["name"] for v in body["versions"]] == [second, first]
    assert body["challenger"]["metrics"] == {"auc": 0.9, "ap": 0.7, "cp@100": 0.25}
    assert (
        body["champion"]["features"] == ["a", "b"]
        and "scikit-learn" in body["champion"]["versions"]
    )
    assert [e["action"] for e in body["audit"]] == ["register", "register", "promote"]

    assert post(f"/v1/models/{second}/promote", headers=api.auth("reader")).status_code == 403
    missing = post("/v1/models/batch-404/promote", headers=api.auth("root"))
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "no model version named 'batch-404'"},
    )
    again = post(f"/v1/models/{first}/promote", headers=api.auth("root"))
    assert (again.status_code, again.json()["detail"]) == (409, f"{first} is already the champion")
    won = post(
        f"/v1/models/{second}/promote", json={"reason": "better AP"}, headers=api.auth("root")
    )
    assert won.status_code == 200
    assert (won.json()["name"], won.json()["stage"], won.json()["previous"]) == (
        second,
        "champion",
        first,
    )
    assert reg.champion().name == second  # type: ignore[union-attr]
    assert reg.audit()[-1]["reason"] == "better AP"

    back = post("/v1/models/rollback", headers=api.auth("root"))
    assert (back.status_code, back.json()["name"]) == (200, first)
    none_left = post("/v1/models/rollback", headers=api.auth("root"))
    assert none_left.status_code == 409
    assert none_left.json()["detail"] == f"the champion {first} has no previous champion"
    assert reg.audit()[-1]["reason"] == "rolled back through the API by key 'root'"

    # both changes were echoed on the control topic for the audit, as done
    records = control_records(api, 2)
    assert [(r["action"], r["status"], r["target"]) for r in records] == [
        ("promote", "done", second),
        ("rollback", "done", first),
    ]


def test_retrain_requests_go_to_the_control_topic(api: Api) -> None:
    assert api.http.post("/v1/models/retrain", headers=api.auth("reader")).status_code == 403
    plain = api.http.post("/v1/models/retrain", headers=api.auth("root"))
    assert plain.status_code == 202 and plain.json()["status"] == "requested"
    dated = api.http.post(
        "/v1/models/retrain", json={"reason": "drift", "now": 1.7e9}, headers=api.auth("root")
    )
    assert dated.status_code == 202
    records = control_records(api, 2)
    assert [r["request_id"] for r in records] == [
        plain.json()["request_id"],
        dated.json()["request_id"],
    ]
    assert records[0]["action"] == "retrain" and records[0]["status"] == "requested"
    assert records[0]["reason"] == "requested through the API by key 'root'"
    assert (records[1]["reason"], records[1]["details"]) == ("drift", {"now": 1.7e9})
    spec = api.http.get("/openapi.json").json()["paths"]
    assert {"/v1/models", "/v1/models/retrain", "/v1/models/rollback"} <= set(spec)
    assert "/v1/models/{name}/promote" in spec
