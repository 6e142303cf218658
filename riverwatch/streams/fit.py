"""A retrain's fit: the offline store's rows read and a challenger trained and judged, in this
process (:func:`fit`, the CLI's ``riverwatch train``) or in a child process of its own
(:meth:`FitChild.run`, the worker's trainer).

The worker runs it in a child because the fit is the biggest thing a worker does: reading a
quarter of a million rows and fitting on them adds ~200 MiB at its peak (``make
bench-train-memory``), memory CPython keeps after the fit, and a fit that runs out of memory
would take the helper's monitor, alerts and forecasts down with it. In a child the memory goes
back when it exits; an out-of-memory kill fails the retrain (answered, saying so) and nothing
else (the child asks the kernel to pick it first, ``oom_score_adj`` 1000); and a worker that
loses the request's lease kills the fit at once instead of letting it run to its end. The job
goes to the child, and the result back, as pickles in a private temporary folder; the child is
``python -m riverwatch.streams.fit JOB RESULT PID`` (a fresh interpreter, not a fork: forking a
process that runs librdkafka's and the event loop's threads is unsafe), and its log lines go
to the worker's output. A child whose worker is killed outright stops within a second.
"""

from __future__ import annotations

import logging
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riverwatch.core.artifacts import load_artifact
from riverwatch.core.errors import ModelError
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.promotion import TrainConfig, Windows
from riverwatch.models.training import TrainingResult, train_and_evaluate
from riverwatch.stores.offline import OfflineStore

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

# what train_and_evaluate reads of a row besides its features (the ids but the card's, the
# decision and the groups were ~60% of the rows' memory)
TRAIN_COLUMNS = ("epoch", "card_id", "label", "online_score")


@dataclass(frozen=True)
class Champion:
    """The champion to judge the challenger against: its name and artifact (path, sha256)."""

    name: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class FitJob:
    """Everything a fit needs, picklable: where the rows are, which, and against whom."""

    data_dir: Path
    features: FeatureSet
    now: float
    cfg: TrainConfig
    win: Windows
    champion: Champion | None = None


@dataclass(frozen=True)
class Fitted:
    """A fit's result, a note on the champion (empty, or why it was ignored) and how it went:
    the fitting process's pid, rows read, seconds, and its peak RSS in MiB."""

    result: TrainingResult
    note: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


def fit(job: FitJob, progress: Progress = lambda _: None) -> Fitted:
    """Read the job's rows, load its champion, train and judge a challenger, here."""
    t0 = time.monotonic()
    store = OfflineStore(job.data_dir, "fit", feature_set=job.features)
    names = job.features.names
    w = job.win
    labeled = store.read(w.train_start, w.holdout_end, columns=[*TRAIN_COLUMNS, *names])
    rows = len(labeled)
    progress(f"{rows:,} rows, {int(labeled['label'].sum()):,} frauds")
    model, note, c = None, "", job.champion
    if c is not None:
        try:
            model, _ = load_artifact(c.path.read_bytes(), c.sha256)
        except (OSError, ModelError) as exc:  # the scorers cannot load it either: judge without
            note = f" (champion {c.name} not loadable, ignored: {exc})"
    against = f"against champion {c.name}" if c and model is not None else "alone"
    progress(f"training a challenger, evaluating it {against} on the hold-out")
    result = train_and_evaluate(labeled, job.now, job.cfg, model, feature_names=names, win=w)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    seconds = round(time.monotonic() - t0, 3)
    stats = {"pid": os.getpid(), "rows_read": rows, "seconds": seconds, "peak_rss_mib": peak}
    return Fitted(result, note, stats)


class FitFailed(ModelError):
    """The fit's child process failed: it exited with an error or was killed."""


class FitChild:
    """One fit in a child process: :meth:`start` it, then :meth:`wait` for its result."""

    def __init__(self, job: FitJob):
        self.job = job
        self.dir = Path(tempfile.mkdtemp(prefix="riverwatch-fit-"))  # 0700: the pickles' home
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Start the child; returns its pid."""
        (self.dir / "job.pkl").write_bytes(pickle.dumps(self.job))
        job, out = str(self.dir / "job.pkl"), str(self.dir / "out")
        argv = [sys.executable, "-m", __name__, job, out, str(os.getpid())]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        return self.proc.pid

    def run(self, check: Callable[[], None] = lambda: None) -> Fitted:
        """:meth:`start`, then :meth:`wait`."""
        try:
            log.info("fitting in child process %d", self.start())
        except BaseException:
            self.close()
            raise
        return self.wait(check)

    def wait(self, check: Callable[[], None] = lambda: None, poll_s: float = 1.0) -> Fitted:
        """The child's result. ``check`` is called every ``poll_s`` while it runs; whatever it
        raises (a lost lease) kills the child and propagates. Raises FitFailed, saying how,
        when the child died or failed."""
        assert self.proc is not None, "start() first"
        try:
            while True:
                try:
                    code = self.proc.wait(poll_s)
                    break
                except subprocess.TimeoutExpired:
                    check()
            if code != 0:
                raise FitFailed(f"the fit's process {self.proc.pid} {_death(code)}")
            with open(self.dir / "out", "rb") as f:
                fitted: Fitted = pickle.load(f)  # written by our own child, in our own folder
            return fitted
        finally:
            self.close()

    def close(self) -> None:
        """Kill the child if it still runs, and remove the folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)  # (twice is harmless)


def _death(code: int) -> str:
    """How a child ended, in words: its exit code or the signal that killed it."""
    if code >= 0:
        return f"exited with {code} (its traceback is in the worker's log)"
    try:
        sig = signal.Signals(-code).name
    except ValueError:  # a real-time signal has no name
        sig = f"signal {-code}"
    why = " (out of memory?)" if -code == signal.SIGKILL else ""
    return f"was killed by {sig}{why}"


def _first_to_go() -> int | None:
    """Make this process the kernel's first choice when memory runs out (``oom_score_adj``
    1000, which any process may set on itself): the fit, not the worker that started it, nor
    Valkey or the broker beside it. Returns the value read back (None where there is no
    /proc)."""
    adj = Path("/proc/self/oom_score_adj")
    try:
        adj.write_text("1000")
        return int(adj.read_text())
    except OSError:
        return None


def _orphaned_exit(parent: int, folder: Path, every_s: float = 1.0) -> None:
    """End this process, and remove its folder, once ``parent`` is gone (killed -9: it could
    not kill us): a fit nobody waits for would hold its memory and a core for minutes, and
    the next owner of ``control`` runs the retrain again beside it. Runs in a daemon thread."""
    while os.getppid() == parent:
        time.sleep(every_s)
    log.warning("the worker %d that started this fit is gone: stopping", parent)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(3)


def main(argv: list[str]) -> int:
    """The child: ``python -m riverwatch.streams.fit JOB RESULT PARENT_PID``."""
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s fit[{os.getpid()}] %(levelname)s %(message)s"
    )
    first = _first_to_go()
    job_path, out = Path(argv[0]), Path(argv[1])
    watch = (int(argv[2]), job_path.parent)  # the parent's pid as it was (it may be gone)
    threading.Thread(target=_orphaned_exit, args=watch, daemon=True, name="orphan").start()
    with open(job_path, "rb") as f:
        job: FitJob = pickle.load(f)  # written by our parent, in its private folder
    fitted = fit(job, progress=log.info)
    fitted.stats["oom_score_adj"] = first
    tmp = out.with_suffix(".part")
    tmp.write_bytes(pickle.dumps(fitted))
    tmp.replace(out)  # the parent reads a whole result or none
    return 0


if __name__ == "__main__":
    # run as the imported module, so the pickled result names riverwatch.streams.fit.Fitted
    # (not __main__.Fitted, which the parent could not load)
    from riverwatch.streams import fit as module

    sys.exit(module.main(sys.argv[1:]))
