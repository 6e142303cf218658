"""RIVERWATCH_FEATURE_ATTRIBUTES: a producer's attributes are features of the stream scorer and
of POST /v1/score alike (same row, same score), and a missing one is counted, not an error."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest

from riverwatch.core.settings import Settings
from riverwatch.models import online
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.serving import ONLINE
from riverwatch.shell.procs import free_port
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.snapshots import SnapshotStore
from tests.support.apiserver import running_api
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration

T0 = 1_767_225_600
ATTRS = ("device_risk", "is_vip")


def tx(i: int, minutes: int, **attributes: object) -> dict[str, object]:
    return {
        "event_id": f"fa{i}",
        "timestamp": T0 + minutes * 60,
        "card_id": "card-fa",
        "terminal_id": "term-fa",
        "amount": 40.0 + i,
        "attributes": attributes,
    }


def fills(page: str, attribute: str, reason: str, scorer: str) -> float:
    """The riverwatch_attribute_fills_total sample of a metrics page (0 when absent)."""
    pattern = (
        r"^riverwatch_attribute_fills_total\{"
        rf'attribute="{attribute}",reason="{reason}",scorer="{scorer}"\}} (\S+)$'
    )
    m = re.search(pattern, page, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def test_attributes_are_features_of_the_stream_and_the_sync_scorer_alike(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings.model_copy(
        update={"feature_attributes": ATTRS, "worker_metrics_port": port}
    )
    with running_worker(settings, tmp_path / "w.log"), running_api(settings) as api:
        # An online model that learned the attribute, published before anything is scored
        # (both scorers load it on their first batch): both must use it the same way.
        model = online.make_model()
        for i in range(300):
            x = dict.fromkeys(FEATURE_NAMES, 1.0) | {"attr_device_risk": i % 2, "attr_is_vip": 0}
            online.learn(model, x, i % 2)
        SnapshotStore(api.redis, api.names).publish(ONLINE, online.dump_snapshot(model, {}), "5")
        history = [tx(i, i, device_risk=0.1 * i, is_vip=False) for i in range(4)]
        history.append(tx(4, 4, device_risk="high"))  # one non-numeric, one missing
        r = api.http.post("/v1/transactions", json=history, headers=api.auth("writer"))
        assert r.status_code == 202, r.text
        poll(lambda: api.redis.get(api.names.score("fa4")), 30, "the history to be scored")

        row = orjson.loads(api.redis.get(api.names.feature_row("fa3")) or b"{}")
        assert row["attrs"] == list(ATTRS) and len(row["x"]) == len(FEATURE_NAMES) + 2
        assert row["x"][-2:] == pytest.approx([0.3, 0.0])
        filled = orjson.loads(api.redis.get(api.names.feature_row("fa4")) or b"{}")
        assert filled["x"][-2:] == [0.0, 0.0]
        # ... and says so to the monitor's data quality (monitors.dataquality.row_quality)
        assert filled["dq"]["bad"] == ["attributes.device_risk"]
        assert "attributes.is_vip" in filled["dq"]["miss"] and "bad" not in row["dq"]
        url = f"http://127.0.0.1:{port}/metrics"
        page = poll(lambda: httpx.get(url).text, 30, "the worker's /metrics")
        assert fills(page, "device_risk", "invalid", "stream") == 1
        assert fills(page, "is_vip", "missing", "stream") == 1
        assert fills(page, "device_risk", "missing", "stream") == 0

        new = tx(99, 10, device_risk=0.9, is_vip=True)
        sync = api.http.post("/v1/score?ingest=true", json=new, headers=api.auth("root"))
        assert sync.status_code == 200, sync.text
        stored = orjson.loads(poll(lambda: api.redis.get(api.names.score("fa99")), 30, "fa99"))
        for field in ("score", "online_score", "batch_score", "decision", "model_versions"):
            assert stored[field] == pytest.approx(sync.json()[field], abs=1e-12), field
        assert stored["model_versions"]["online"] == "5"
        assert stored["reasons"][0]["feature"] == "attr_device_risk"
        row = orjson.loads(api.redis.get(api.names.feature_row("fa99")) or b"{}")
        assert row["x"][-2:] == [0.9, 1.0]
        assert row["x"][FEATURE_NAMES.index("card_n_1d")] == 6.0  # five before it, and itself

        before = fills(api.http.get("/metrics").text, "is_vip", "missing", "api")
        lacking = api.http.post(
            "/v1/score", json=tx(100, 11, device_risk=0.5), headers=api.auth("reader")
        )
        assert lacking.status_code == 200, lacking.text
        after = fills(api.http.get("/metrics").text, "is_vip", "missing", "api")
        assert after == before + 1

        # The learner learns from the rows as stored (attributes in) and keeps them offline.
        labels = [
            {"event_id": f"fa{i}", "label": i % 2, "timestamp": T0 + 86_400} for i in range(4)
        ]
        r = api.http.post("/v1/labels", json=labels, headers=api.auth("writer"))
        assert r.status_code == 202, r.text
        fs = FeatureSet(settings.feature_attributes)
        store = OfflineStore(settings.data_dir, writer="check", feature_set=fs)

        def stored_rows() -> list[pd.DataFrame]:
            got = store.read(T0, T0 + 86_400)
            return [got] if len(got) == 4 else []

        offline = poll(stored_rows, 30, "the four labeled rows offline")[0].sort_values("event_id")
        assert offline["attr_device_risk"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
        assert offline["attr_is_vip"].tolist() == [0.0] * 4
        assert offline["label"].tolist() == [0, 1, 0, 1]
