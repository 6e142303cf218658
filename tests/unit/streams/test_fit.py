"""A retrain's fit in a child process (streams/fit.py): the same result as in this process, an
out-of-memory kill or a lost lease turned into an error that names it, nothing left behind."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from riverwatch.core.errors import ModelError
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.promotion import TrainConfig, windows
from riverwatch.stores.offline import OfflineStore
from riverwatch.streams.fit import Champion, FitChild, FitFailed, FitJob, fit
from tests.support.builders import labeled_frame

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> FitJob:
    data = tmp_path_factory.mktemp("fit")
    store = OfflineStore(data, writer="seed")
    frame = labeled_frame()  # 45 simulated days, every label in
    store.append(frame.to_dict("records"))
    store.close()
    cfg = TrainConfig()
    now = float(frame["epoch"].max()) + cfg.delay_days * 86_400  # as the trainer sets it
    return FitJob(data, FeatureSet(), now, cfg, windows(now, cfg))


def test_a_child_fits_what_this_process_fits_and_reports_itself(job: FitJob) -> None:
    here = fit(job)
    child = FitChild(job)
    there = child.run()
    assert there.stats["pid"] != os.getpid() and child.proc is not None
    assert child.proc.returncode == 0 and not child.dir.exists()
    assert there.result.counts == here.result.counts and there.result.counts["train_frauds"] > 0
    assert there.result.challenger_metrics == here.result.challenger_metrics
    assert there.result.promote == here.result.promote and there.result.reason == here.result.reason
    assert there.stats["rows_read"] == here.stats["rows_read"] > 0
    assert there.stats["peak_rss_mib"] > 50  # the child's own interpreter, pandas and the fit
    assert there.stats["oom_score_adj"] == 1000  # out of memory, the kernel kills it first
    assert "oom_score_adj" not in here.stats


def test_a_champion_that_does_not_verify_is_named_and_ignored(job: FitJob, tmp_path: Path) -> None:
    bad = tmp_path / "batch-7.pkl"
    bad.write_bytes(b"not an artifact")
    fitted = FitChild(FitJob(**{**vars(job), "champion": Champion("batch-7", bad, "0" * 64)})).run()
    assert "champion batch-7 not loadable, ignored: artifact sha256 mismatch" in fitted.note
    assert fitted.result.champion_metrics is None and fitted.result.evaluated


def test_a_child_killed_by_the_kernel_fails_the_fit_saying_so(job: FitJob) -> None:
    child = FitChild(job)
    pid = child.start()
    os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer does
    with pytest.raises(FitFailed, match=rf"process {pid} was killed by SIGKILL \(out of memory"):
        child.wait()
    assert not child.dir.exists()
    assert issubclass(FitFailed, ModelError)  # the trainer answers it as a failed retrain


def test_a_failing_check_kills_the_child_at_once(job: FitJob) -> None:
    class LeaseLost(Exception):
        pass

    def lost() -> None:
        raise LeaseLost

    child = FitChild(job)
    child.start()
    t0 = time.monotonic()
    with pytest.raises(LeaseLost):
        child.wait(lost, poll_s=0.05)
    assert child.proc is not None and child.proc.returncode == -signal.SIGKILL
    assert time.monotonic() - t0 < 10 and not child.dir.exists()


STARTER = """
import pickle, sys, time
from riverwatch.streams.fit import FitChild
child = FitChild(pickle.load(open(sys.argv[1], "rb")))
print(child.start(), child.dir, flush=True)
time.sleep(600)
"""


def test_a_fit_whose_worker_is_killed_outright_stops_and_cleans_up(
    job: FitJob, tmp_path: Path
) -> None:
    (tmp_path / "job.pkl").write_bytes(pickle.dumps(job))
    argv = [sys.executable, "-c", STARTER, str(tmp_path / "job.pkl")]
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as worker:
        assert worker.stdout is not None
        pid, folder = worker.stdout.readline().decode().split()
        os.kill(worker.pid, signal.SIGKILL)  # no finally, no kill of its child
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the orphaned fit still runs"
    assert not Path(folder).exists()
