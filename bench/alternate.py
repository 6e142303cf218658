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
        for _ in range(rounds):
            for name, tree in ((ref, base), (THIS, here)):
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
        return
    res = measure()
    if os.environ.get(json_var):
        print(json.dumps(res))
        return
    print(title(""))
    report(res)
