"""The monitor core's results (drift, fairness, performance, concept drift, estimates):
exported as Prometheus gauges when the core makes them, written to Redis with the batch that
made them (:meth:`Results.write`, in the transaction of
:meth:`streams.monitor.runner.Monitor.publish`): the latest per kind under ``monitor:<kind>``
and a bounded history (``monitor:<kind>:history``, newest first)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import redis

from riverwatch.core.metrics import DRIFT_SHARE, FAIRNESS_DIFFERENCE, PERFORMANCE, PREDICTION_PSI
from riverwatch.core.names import Names


class Results:
    """The results the core stored since the last write (see the module)."""

    def __init__(self, names: Names, history: int):
        self.names, self.history = names, history
        self.pending: list[tuple[str, bytes]] = []

    def store(self, kind: str, result: dict[str, Any]) -> None:
        """The core's ``store`` callback (it calls it while it takes a batch in)."""
        export(kind, result)
        self.pending.append((kind, orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)))

    def write(self, p: redis.client.Pipeline) -> None:
        """Add the pending results to ``p``; :meth:`written` once it ran."""
        for kind, blob in self.pending:
            history = self.names.monitor(f"{kind}:history")
            p.set(self.names.monitor(kind), blob)
            p.lpush(history, blob)
            p.ltrim(history, 0, self.history - 1)

    def written(self) -> None:
        self.pending.clear()


def export(kind: str, result: dict[str, Any]) -> None:
    """Prometheus gauges of a stored result."""
    if kind == "drift" and result.get("data"):
        DRIFT_SHARE.set(result["data"]["share_drifted"])
        psi = (result.get("prediction") or {}).get("psi")
        if psi is not None and not math.isnan(psi):
            PREDICTION_PSI.set(psi)
    elif kind == "fairness":
        for attr, f in result["attributes"].items():
            for metric in ("demographic_parity_difference", "equalized_odds_difference"):
                FAIRNESS_DIFFERENCE.labels(attr, metric).set(f[metric])
    elif kind == "performance":
        for model, rep in result["models"].items():
            for metric in ("auc", "ap", "card_precision", "precision", "recall", "maturity"):
                if rep.get(metric) is not None:
                    PERFORMANCE.labels(model, metric).set(rep[metric])
