"""Run one benchmark script against another checkout and this tree, alternately, in one run.

The script (``script``, a file of this tree) is started once per round and tree, with that
tree as its working directory and ``PYTHONPATH``; the other tree gets a copy of this tree's
``bench`` package, so the same harness drives both trees' ``riverwatch``. It prints its
results as one JSON object on its last line, ``{name: [values]}``, and the rounds' lists are
joined per tree.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

THIS = "this tree"


def alternately(
    ref: str, script: str, env: Mapping[str, str], rounds: int
) -> dict[str, dict[str, list[Any]]]:
    """Per tree (``ref``, then :data:`THIS`), each result's values over ``rounds`` rounds."""
    here = Path(__file__).resolve().parents[1]
    base = Path(tempfile.mkdtemp(prefix="riverwatch-base-"))
    archive = subprocess.run(
        ["git", "-C", str(here), "archive", ref], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    shutil.rmtree(base / "bench")  # the same harness drives both trees: this tree's
    shutil.copytree(here / "bench", base / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    got: dict[str, dict[str, list[Any]]] = {ref: {}, THIS: {}}
    try:
        for i in range(rounds):
            # ABBA: which tree runs first alternates by round, so that whatever favours the
            # first or the second process of a round (the machine's state) falls on both
            order = ((ref, base), (THIS, here))
            for name, tree in order if i % 2 == 0 else order[::-1]:
                run = subprocess.run(
                    [sys.executable, str(Path(script).resolve())], cwd=tree, text=True,
                    env={**env, "PYTHONPATH": str(tree)}, capture_output=True,
                )  # fmt: skip
                if run.returncode:
                    sys.exit(f"{name} failed ({run.returncode}):\n{run.stderr[-3000:]}")
                for k, v in json.loads(run.stdout.strip().splitlines()[-1]).items():
                    got[name].setdefault(k, []).extend(v)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return got


def main_of(
    measure: Callable[[], Mapping[str, list[Any]]],
    report: Callable[[Mapping[str, list[Any]]], None],
    json_var: str,
    title: Callable[[str], str],
    compare_env: Mapping[str, str],
    rounds: int,
    script: str,
) -> None:
    """A benchmark's command line: ``--compare REF`` runs ``script`` in both trees alternately
    (with ``compare_env``: one round each, JSON out) and reports each tree under
    ``title("REF vs this tree, alternately")``; with ``json_var`` set it prints its results
    as JSON (a round of a comparison); else it measures and reports under ``title("")``."""
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        ref = sys.argv[2]
        got = alternately(ref, script, {**os.environ, **compare_env, json_var: "1"}, rounds)
        print(title(f"{ref} vs this tree, alternately, {rounds} rounds"))
        for name, res in got.items():
            print(f" {name}:")
            report(res)
        for line in paired_ratios(got[ref], got[THIS]):
            print(line)
        return
    res = measure()
    if os.environ.get(json_var):
        print(json.dumps(res))
        return
    print(title(""))
    report(res)


def paired_ratios(ref: Mapping[str, list[Any]], this: Mapping[str, list[Any]]) -> list[str]:
    """This tree over ``ref``, round by round (the two runs of a round are neighbours in
    time, so a machine that speeds up or slows down between rounds cancels out): per result
    whose rounds pair up, per value, the median ratio and its range.

    >>> paired_ratios({"a": [[2.0, 4.0], [3.0, 4.0]]}, {"a": [[1.0, 4.0], [3.0, 2.0]]})
    ['  this tree / ref, paired by round: a: 0.75 (0.50-1.00), 0.75 (0.50-1.00)']
    """
    out = []
    for k, mine in this.items():
        theirs = ref.get(k, [])
        if not mine or len(mine) != len(theirs) or not all(isinstance(v, list) for v in mine):
            continue  # per-event lists (GC pauses) do not pair up
        cols = []
        for j in range(len(mine[0])):
            rs = sorted(m[j] / t[j] for m, t in zip(mine, theirs, strict=True) if t[j])
            if rs:
                cols.append(f"{statistics.median(rs):.2f} ({rs[0]:.2f}-{rs[-1]:.2f})")
        if cols:
            out.append(f"  this tree / ref, paired by round: {k}: " + ", ".join(cols))
    return out
