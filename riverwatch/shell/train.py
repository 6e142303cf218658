"""`riverwatch train`: train a batch challenger from the offline store now, in this process.

The same steps as the trainer agent (streams.trainer.retrain): read the labeled window,
train, evaluate against the champion on the hold-out, register, promote only if it wins.
Nothing goes through Kafka, so it works with the workers stopped (Redis must be up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings

COLUMNS = (("auc", "AUC"), ("ap", "AP"), ("cp@100", "CP@100"))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"


def metrics_table(details: dict[str, Any]) -> list[str]:
    """The challenger's and champion's hold-out metrics as aligned text lines.

    >>> for line in metrics_table({"challenger": {"auc": 0.9, "ap": 0.7, "cp@100": 0.3},
    ...                            "challenger_name": "batch-2", "champion": None}):
    ...     print(line)
    model                     AUC       AP   CP@100
    challenger batch-2     0.9000   0.7000   0.3000
    """
    lines = [f"{'model':<20}" + "".join(f"{label:>9}" for _, label in COLUMNS)]
    for role in ("challenger", "champion"):
        metrics = details.get(role)
        if not metrics:
            continue
        who = f"{role} {details.get(f'{role}_name') or ''}".strip()
        lines.append(f"{who:<20}" + "".join(f"{_cell(metrics.get(k)):>9}" for k, _ in COLUMNS))
    return lines


def parse_now(text: str | float | None) -> float | None:
    """An event time from epoch seconds or ISO 8601 (naive means UTC).

    >>> parse_now("1970-01-02"), parse_now(5), parse_now(None)
    (86400.0, 5.0, None)
    """
    if text is None or isinstance(text, int | float):
        return None if text is None else float(text)
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def run_train(
    settings: Settings, now: str | float | None = None, echo: Callable[[str], None] = print
) -> bool:
    """Train, register, maybe promote; print progress and the metrics. True on success.

    ``now``: the event time to train as of (see :func:`parse_now`); default: the newest
    labeled row plus the label delay.
    """
    from riverwatch.streams.trainer import (
        retrain,  # imports faust and scikit-learn: only when training
    )

    t0 = time.monotonic()

    def step(msg: str) -> None:
        echo(f"[{time.monotonic() - t0:6.1f} s] {msg}")

    client = redis_client(redis_config(settings))
    try:
        ctx = Context.from_settings(settings)
        registry, store = ctx.registry(client), ctx.offline("cli")
        at = parse_now(now)
        ok, message, details = retrain(ctx, registry, store, at, progress=step)
    finally:
        client.close()
    counts = details.get("counts", {})
    if counts:
        echo(
            f"rows: train {counts['train_rows']:,} ({counts['train_frauds']:,} frauds), "
            f"hold-out {counts['holdout_rows']:,} ({counts['holdout_frauds']:,} frauds)"
        )
    if details.get("challenger"):
        echo("")
        for line in metrics_table(details):
            echo(line)
        echo("")
    echo(("" if ok else "not trained: ") + message)
    return ok
