"""What every role of a worker process shares: its context, its id, producing a handler's
outputs, the one thread that owns a role's state, and the service that runs a batch loop.

A role is wired by ``register(app, ctx)`` (streams/roles/, the table in streams/app.py); ``ctx``
is the :class:`WorkerContext`: the composition root's :class:`riverwatch.context.Context`
plus this process's id and its open Redis client and Kafka producer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import faust
import redis
from confluent_kafka import Producer
from mode import Service

from riverwatch.context import Context
from riverwatch.core.roles import Role
from riverwatch.streams.inflight import tune_gc
from riverwatch.streams.records import Out

if TYPE_CHECKING:
    from riverwatch.streams.batching import BatchLoop

log = logging.getLogger(__name__)
T = TypeVar("T")


def worker_id() -> str:
    """host:pid, unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, eq=False)
class WorkerContext(Context):
    """The context of one worker process: what every role's ``register(app, ctx)`` gets."""

    worker: str
    redis: redis.Redis
    producer: Producer
    roles: frozenset[Role]


async def produce(app: faust.App, outs: Iterable[Out]) -> None:
    """Send a handler's outputs with the app's producer (a faust agent commits its offsets
    once the records it consumed are acknowledged)."""
    for o in outs:
        await app.producer.send(o.topic, o.key, o.value, None, None, None)


class OwnerThread:
    """One thread owns a role's state (a model, the monitor's windows): every call runs there,
    one at a time, off the event loop, so the state needs no lock."""

    def __init__(self, name: str):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the owner thread, awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


def stop_worker(what: str) -> Callable[[BaseException], None]:
    """The crash handler of a batch loop: an agent must never die silently, so a dead loop
    takes its worker down; the supervisor (riverwatch up, Kubernetes) restarts it and the
    batch is consumed again."""

    def die(exc: BaseException) -> None:
        log.critical("%s loop died (%s); stopping the worker", what, exc)
        os._exit(3)

    return die


def loop_service(
    app: faust.App, loop: BatchLoop, on_crash: Callable[[BaseException], None]
) -> None:
    """Run ``loop`` (streams/batching.py, a consumer in its own thread) as a service of ``app``:
    started with the worker, stopped with it. The process's collector is tuned first
    (:func:`streams.inflight.tune_gc`, once the worker's start-up objects exist): every batch
    loop allocates tens of thousands of objects a batch (the monitor's windows keep many of
    them), and at the default thresholds the collector walked them all again and again (the
    monitor: 81-89 us of CPU per score untuned, 54 tuned; bench/monitor_cost.py)."""

    @app.service
    class BatchLoopService(Service):  # outside faust's per-event machinery
        async def on_start(self) -> None:
            tune_gc()
            loop.start(on_crash)

        async def on_stop(self) -> None:
            await asyncio.get_running_loop().run_in_executor(None, loop.stop)
