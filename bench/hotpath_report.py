"""The report of bench.hotpath: per measurement the scorer's and Valkey's CPU per event, what
the live part sent, and the 30-day over 1-day ratios (split from bench.hotpath to keep it short).
"""

from __future__ import annotations

import statistics

# the history measurements: the first transaction of each entity (where old state migrates),
# transactions in one hour (the store's cached window sums serve them), one hour later each
# round (every read sums windows anew)
KINDS = ("first read, {}d", "history {}d", "history {}d, new hour")
# what the live part's batches sent, per event (``live io``)
IO = ("Kafka records", "Kafka bytes", "Valkey commands", "script calls per batch",
      "Valkey bytes in", "Valkey bytes out")  # fmt: skip


def _line(name: str, vals: list[list[float]]) -> str:
    cpu, rds = [v[0] for v in vals], [v[1] for v in vals]
    return (
        f"  {name:<22} scorer CPU per event: median {statistics.median(cpu):6.1f} us "
        f"(min {min(cpu):.1f}, max {max(cpu):.1f}); Valkey {statistics.median(rds):6.1f} us "
        f"(min {min(rds):.1f}, max {max(rds):.1f})"
    )


def report(res: dict[str, list[list[float]]]) -> None:
    """The measurements' lines, and the 30-day / 1-day ratios."""
    for name in ("live", "backfill", *(k.format(d) for k in KINDS for d in (1, 30))):
        if res.get(name):
            print(_line(name, res[name]))
    if io := res.get("live io"):  # absent from results of older harnesses
        per = ", ".join(
            f"{what} {statistics.median(v[i] for v in io):,.1f}" for i, what in enumerate(IO)
        )
        print(f"  live, per event (medians): {per}")
        cmds = sorted(
            ((k.removeprefix("valkey "), v) for k, v in res.items() if k.startswith("valkey ")),
            key=lambda kv: -statistics.median(x[1] for x in kv[1]),
        )
        med = statistics.median
        print("  live, Valkey per event by command (calls, us; medians): " + ", ".join(
            f"{c} {med(x[0] for x in v):.2f}, {med(x[1] for x in v):.1f}" for c, v in cmds
        ))  # fmt: skip
    for k in KINDS[1:]:
        one, thirty = res.get(k.format(1)), res.get(k.format(30))
        if one and thirty:
            ratios = []
            for i, what in enumerate(("scorer CPU", "Valkey CPU")):
                m1, m30 = (statistics.median(v[i] for v in x) for x in (one, thirty))
                ratios.append(f"{what} {m30 / m1:.2f}x")
            label = k.format("").replace(" d", "")
            print(f"  30 days / 1 day of history ({label}): " + ", ".join(ratios))
