"""The faust worker app, built by a factory: nothing is created at import time.

What runs in a worker, by role (``RIVERWATCH_WORKER_ROLES``, default ``all``; the roles are
:class:`riverwatch.core.roles.Role`, parsed and checked when the settings are built):

* ``scoring``: the scoring loop (``transactions`` -> ``scores``/``alerts``/``deadletter``), a
  confluent-kafka batch consumer run as a service of this app (see streams/batching.py for why);
* ``learning``: the ``labels`` agent (faust, micro-batches via ``take_events``), the online
  learner, and a snapshot timer that also carries out pending resets of the online model on
  the worker that owns ``labels``;
* ``alerts`` (streams/alert_dispatcher.py), ``forecasting`` (streams/forecasting.py), ``monitoring``
  (streams/monitor/) and ``training`` (streams/trainer.py);
* always a heartbeat timer: scorers beat into ``workers`` (what /readyz counts), the others
  into ``helpers``.

Each role is wired by one ``register(app, ctx)`` (:data:`ROLES`: streams/roles/<role>.py, the
monitor's in streams/monitor/agents.py); ``ctx`` is the worker's
:class:`riverwatch.streams.runtime.WorkerContext`, built here once from the composition
root's context (the shell builds that from the settings).

One process per core runs every role by default; the forecaster, the monitor and the
trainer then share the scorer's interpreter lock (measured: they held it for over a third
of the scorer's time in a replay). ``riverwatch up`` and the deploy manifests run them in a
process of their own.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from typing import Any

import faust
import redis

from riverwatch.context import Context
from riverwatch.core.kafka import faust_credentials, producer
from riverwatch.core.redis import redis_client
from riverwatch.core.roles import Role
from riverwatch.streams import kafka_headers
from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.inflight import trim_heap
from riverwatch.streams.runtime import WorkerContext, worker_id

log = logging.getLogger(__name__)

# The roles, in the order they are wired, each with the module of its ``register(app, ctx)``.
# A module is imported only in a process that runs its role: a scorer (scoring, learning) then
# does not load the monitor's, the forecaster's, the trainer's and the dispatcher's code
# (measured: 276 -> 264 MB resident once its app is built, 2,833 -> 2,581 modules).
ROLES: dict[Role, str] = {
    Role.SCORING: "riverwatch.streams.roles.scoring",
    Role.LEARNING: "riverwatch.streams.roles.learning",
    Role.ALERTS: "riverwatch.streams.roles.alerts",
    Role.FORECASTING: "riverwatch.streams.roles.forecasting",
    Role.MONITORING: "riverwatch.streams.monitor.agents",
    Role.TRAINING: "riverwatch.streams.roles.training",
}


def register(role: Role, app: faust.App, ctx: WorkerContext) -> Any:
    """Wire ``role`` into ``app``: its module's ``register(app, ctx)`` (imported here)."""
    return importlib.import_module(ROLES[role]).register(app, ctx)


def create_app(root: Context) -> faust.App:
    """A faust app wired to ``root``'s broker, Redis, topics and consumer groups.

    It runs the agents of the worker's roles (RIVERWATCH_WORKER_ROLES). Processes with
    other roles form other consumer groups, so each sees every partition its own agents need.
    """
    kafka_headers.install()  # a header key that is not UTF-8 must not stop faust's consumer
    kafka, config = root.kafka_config, root.worker_config
    roles = config.roles
    ctx = WorkerContext.of(
        root,
        worker=worker_id(),
        redis=redis_client(root.redis_config),
        producer=producer(kafka),
        roles=roles,
    )
    datadir = config.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    group = "worker" if roles == frozenset(ROLES) else "worker-" + "-".join(sorted(roles))
    app = faust.App(
        ctx.group(group),
        broker=f"kafka://{kafka.bootstrap}",
        broker_credentials=faust_credentials(kafka),
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=kafka.partitions,
        topic_allow_declare=False,
        broker_session_timeout=kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=max(0.5, kafka.session_timeout_ms / 3000),
        broker_rebalance_timeout=kafka.session_timeout_ms / 1000,
        consumer_auto_offset_reset="earliest",
    )
    wired = {role: register(role, app, ctx) for role in ROLES if role in roles}
    _heartbeat(app, ctx, wired.get(Role.SCORING))
    if config.trim_s > 0:
        _trim(app, config.trim_s)
    log.info("worker %s runs: %s", ctx.worker, ", ".join(wired))
    return app


def _trim(app: faust.App, every_s: float) -> None:
    """Every ``every_s``: the heap memory the process freed goes back to the OS
    (:func:`streams.inflight.trim_heap`), on a thread of the event loop's executor."""

    @app.timer(interval=every_s)
    async def trim() -> None:
        await asyncio.get_running_loop().run_in_executor(None, trim_heap)


def _heartbeat(app: faust.App, ctx: WorkerContext, scoring: BatchLoop | None) -> None:
    """Scorers beat into ``workers`` (what /readyz counts), other processes into ``helpers``."""
    names, r, wid = ctx.names, ctx.redis, ctx.worker
    beats = names.workers() if scoring is not None else names.helpers()

    @app.timer(interval=ctx.worker_config.heartbeat_s)
    async def heartbeat() -> None:
        if scoring is not None and not scoring.ready.is_set():
            return  # /readyz counts workers that can score right now
        try:
            await asyncio.get_running_loop().run_in_executor(None, beat)
        except redis.exceptions.RedisError as exc:  # Redis down: a missed beat, not a crash
            log.warning("heartbeat not written: %r", exc)

    def beat() -> None:
        p = r.pipeline(transaction=False)
        p.hset(beats, wid, time.time())
        if scoring is not None:  # /readyz wants every transactions partition owned
            p.hset(names.worker_partitions(), wid, ",".join(map(str, sorted(scoring.assigned))))
        p.execute()
