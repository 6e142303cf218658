"""A faust worker whose stop is bounded in time.

faust (mode) stops a worker on SIGTERM or SIGINT by stopping its services in order; with the
broker gone at the same moment (``riverwatch up`` killed with SIGKILL: the embedded broker
dies and every child gets SIGTERM from PR_SET_PDEATHSIG) that stop waited on the broker for
good (3 of 3 runs on Apache Kafka, ``tests/integration/test_worker_stops_without_broker.py``),
the orphan spinning on reconnects. Here the first such signal also arms a timer: after
``grace_s`` the process exits with status 1 whatever is still stopping. Nothing accepted is
lost by it: a worker commits a record's offset only once its outputs are acknowledged, so
what it had not committed is read again by the partition's next owner.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import faust

log = logging.getLogger(__name__)


class BoundedWorker(faust.Worker):
    """:class:`faust.Worker` that exits at the latest ``grace_s`` after a stop signal."""

    grace_s: float = 30.0

    def _schedule_shutdown(self, sig: signal.Signals) -> None:
        if not self._signal_stop_time:  # the first signal: faust starts stopping now
            timer = threading.Timer(self.grace_s, _force_exit, args=(sig, self.grace_s))
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(sig)


def _force_exit(sig: signal.Signals, grace_s: float) -> None:
    log.error("still stopping %.0f s after %s: exiting without a clean stop", grace_s, sig.name)
    logging.shutdown()
    os._exit(1)
