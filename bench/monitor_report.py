"""The tables of the monitor benchmark (bench/monitor.py): detections, delays and false alarms
per scenario and alert kind, and the label shift against the no-change run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.monitor_world import (
    CHANGE,
    DAYS,
    DELAY,
    KINDS,
    LABEL_KINDS,
    REF_DAYS,
    SCENARIOS,
    WHERE,
    kind_of,
)
from riverwatch.simulator.base import DAY_S


def summarise(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (scenario, kind): detections with delays, false alarms before the change."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        change = r["start"] + (CHANGE if r["scenario"] != "none" else DAYS) * DAY_S
        for kind in KINDS:
            a = acc.setdefault(
                (r["scenario"], kind), {"delays": [], "false": 0, "runs": 0, "subjects": set()}
            )
            a["runs"] += 1
            mine = [(t, s) for k, s, t in r["alerts"] if kind_of(k, s) == kind]
            a["false"] += sum(t < change for t, _ in mine)
            after = [(t, s) for t, s in mine if t >= change]
            a["delays"].append((after[0][0] - change) / DAY_S if after else math.inf)
            a["subjects"] |= {s for _, s in after[:3]}
    return acc


def table(results: list[dict[str, Any]], seeds: list[int]) -> None:
    """Print the markdown table."""
    acc = summarise(results)
    print(f"seeds {seeds}; change on day {CHANGE} of {DAYS}; labels {DELAY} days late\n")
    print(
        "| scenario | kind | detected | median delay (days) | false alarms before change "
        "| subjects |"
    )
    print("|---|---|---|---|---|---|")
    for scenario, (_, want) in SCENARIOS.items():
        if (scenario, KINDS[0]) not in acc:
            continue
        for kind in KINDS:
            a = acc[(scenario, kind)]
            d = np.array(a["delays"])
            hit = int(np.isfinite(d).sum())
            if scenario == "none":
                delay = "-"
                det = "-"
            else:
                delay = delay_cell(a["delays"], kind in LABEL_KINDS)
                det = f"{hit}/{len(d)}"
            mark = " **(target)**" if kind == want else ""
            subj = ", ".join(sorted(a["subjects"]))[:60]
            print(f"| {scenario} | {kind}{mark} | {det} | {delay} | {a['false']} | {subj} |")


def segments(results: list[dict[str, Any]]) -> None:
    """Per scenario with a place (:data:`WHERE`): the segment its first three features drift
    alerts after the change named, per seed, and how many of them named the right one."""
    rows = []
    for scenario, want in WHERE.items():
        runs = sorted((r for r in results if r["scenario"] == scenario), key=lambda r: r["seed"])
        firsts = []
        for r in runs:
            change = r["start"] + CHANGE * DAY_S
            firsts.append((r["seed"], [s for t, s in r.get("named", []) if t >= change][:3]))
        if not firsts:
            continue
        right = sum(s == want for _, names in firsts for s in names)
        total = sum(len(names) for _, names in firsts)
        cell = "; ".join(f"{k}: {', '.join(names) or '-'}" for k, names in firsts)
        rows.append(f"| {scenario} | {want} | {right} of {total} | {cell} |")
    if rows:
        print("| scenario | where | features alerts naming it (first 3 a run) | named, per seed |")
        print("|---|---|---|---|")
        print("\n".join(rows))


def groups(results: list[dict[str, Any]]) -> None:
    """Per scenario: the ``performance`` alerts that named a group (``batch/region=south``)
    after the change, on the scenario's group (:data:`WHERE`; none for a change of every
    event) and elsewhere, and which groups."""
    rows = []
    for scenario in SCENARIOS:
        runs = [r for r in results if r["scenario"] == scenario]
        if not runs or scenario == "none":
            continue
        named: dict[str, int] = {}
        for r in runs:
            change = r["start"] + CHANGE * DAY_S
            for kind, subject, t in r["alerts"]:
                if kind == "performance" and "/" in subject and t >= change:
                    group = subject.split("/", 1)[1]
                    named[group] = named.get(group, 0) + 1
        want = WHERE.get(scenario, "*")
        right = named.get(want, 0)
        cell = ", ".join(f"{g} {n}" for g, n in sorted(named.items())) or "-"
        rows.append(f"| {scenario} | {want} | {right} | {sum(named.values()) - right} | {cell} |")
    if rows:
        print("| scenario | where | group performance alerts there | elsewhere | groups named |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))


def delay_cell(delays: list[float], label_based: bool) -> str:
    """The median delay in days (``inf``: a run that did not catch it), and for a label-based
    kind also from the first label; where most runs did not catch it (the median is beyond
    the run) "-" with the delays of the runs that did, so "1/3" does not read as no delay.

    >>> delay_cell([1.1, math.inf, 2.0], False), delay_cell([9.1, math.inf, math.inf], True)
    ('2.0', '- (most runs none; 9.1 (+2.1 from labels) in 1)')
    """

    def one(x: float) -> str:
        return f"{x:.1f}" + (f" ({x - DELAY:+.1f} from labels)" if label_based else "")

    med = float(np.median(delays))
    if not math.isinf(med):
        return one(med)
    hits = sorted(x for x in delays if not math.isinf(x))
    if not hits:
        return "-"
    return f"- (most runs none; {', '.join(map(one, hits))} in {len(hits)})"


def ratios(counts: list[tuple[int, int]], first: int, last: int) -> list[tuple[float, float]]:
    """Flagged and fraud counts of each 3-day span starting on days first..last, over 3 times
    the reference's daily mean."""
    ref = np.mean(counts[REF_DAYS[0] : REF_DAYS[1]], axis=0)
    out = []
    for d in range(first, last + 1):
        fl, fr = np.sum(counts[d : d + 3], axis=0) / (3 * ref)
        out.append((float(fl), float(fr)))
    return out


def separability(results: list[dict[str, Any]]) -> None:
    """Per seed: the label shifts' first 3 days against the no-change run's largest 3 days."""
    for shift in (n for n in SCENARIOS if n.startswith("fraud x3")):
        _separability(results, shift)


def _separability(results: list[dict[str, Any]], shift: str) -> None:
    by = {(r["scenario"], r["seed"]): r["counts"] for r in results}
    seeds = sorted(k for (n, k) in by if n == shift and ("none", k) in by)
    if not seeds:
        return
    print(
        f"\n{shift} vs no change, per seed: counts over 3 days / 3 x the reference's daily "
        f"mean (days {REF_DAYS[0]}-{REF_DAYS[1] - 1}); flagged = score >= review threshold, "
        "frauds = true labels (an oracle)\n"
    )
    print(
        f"| seed | label shift days {CHANGE}-{CHANGE + 2}: flagged | frauds | no change, "
        "largest over 3 judged days: flagged | frauds | separable in 3 days (flagged / frauds) |"
    )
    print("|---|---|---|---|---|---|")
    for k in seeds:
        fl, fr = ratios(by[(shift, k)], CHANGE, CHANGE)[0]
        calm = ratios(by[("none", k)], REF_DAYS[1], DAYS - 3)
        cfl, cfr = max(x for x, _ in calm), max(y for _, y in calm)
        sep = f"{'yes' if fl > cfl else 'no'} / {'yes' if fr > cfr else 'no'}"
        print(f"| {k} | {fl:.2f} | {fr:.2f} | {cfl:.2f} | {cfr:.2f} | {sep} |")
