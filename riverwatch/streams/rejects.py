"""Count a batch's rejected records (and, for labels and metrics, the ones that passed) into
the monitor's data-quality counters (:mod:`core.rejects`), each record once whatever the
redeliveries.

A batch is consumed at least once: a worker that dies before committing, a transient error
(Redis, Kafka) or a poison record's bisection hands the same records to a handler again. So
each counted record is keyed by where it is in the log: the counters keep, per topic
partition, the last offset counted (``Names.monitor("rejects:marks")``, one field per
partition), and a record counts only when its offset is past its partition's mark. One Lua
script reads the marks, adds the counts and moves the marks atomically, so two owners of a
partition during a rebalance cannot count a record twice either.

Why offsets and not a set of counted event ids with a TTL: a partition is consumed in order by
one owner at a time and a redelivery starts at the last commit, so one number per partition
says exactly what was counted, and its memory is the partitions' count however many records
are rejected (a set of ids grows with a hostile flood, and a TTL would have to outlast the
longest outage). Why not count once the offsets are committed: the counters and the commit
live in two systems, so a crash between them loses or repeats counts either way.

A record a handler raised on, dead-lettered alone by the batch loop's bisection
(:func:`streams.records.isolate`), is rejected too: :meth:`RejectCounter.count_failed` counts
it as ``(record)|invalid|handler_error`` (prefixed as its topic's fields) and in its topic's
records counter, once, under marks of its own per partition (``<topic>|<partition>|failed``):
the batch's first attempt counted its parse-stage rejects and moved the partition's mark past
every record of the batch before the handler raised. A record that passed validation was
counted in ``valid.<topic>`` then (labels and metrics), so it moves from there to the rejected.
The monitor counts the records it raises on too (streams/guard.py): a score as a rejected
transaction, under its ``scores`` partition's marks; a label under the same marks as the
learner's, so a label both raise on (its feature row unreadable) counts once. The price: a
label only the monitor raises on, below a mark the learner's batch moved, is not counted.

A topic deleted and created again under the same name starts its offsets at 0 again: delete
``monitor:rejects:marks`` with it, or its first records are not counted. On Redis Cluster the
script's two keys must share a slot (as the feature store's scripts' keys must).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from riverwatch.core.names import Names
from riverwatch.core.rejects import prefix, records_key, valid_key
from riverwatch.streams.records import Record

# KEYS[1]: the counters hash, KEYS[2]: the marks hash.
# ARGV[1]: the field counting records that passed (empty: not counted), ARGV[2]: partitions;
# per partition: its mark field, its top offset in the batch, then the offsets that passed
# (n, then n offsets), then the rejected records (n, then per record: offset, k, k fields;
# a field written ``-field`` is decremented).
_COUNT = """
local counters, marks, valid = KEYS[1], KEYS[2], ARGV[1]
local inc = {}
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local field, top = ARGV[i], tonumber(ARGV[i + 1])
  local mark = tonumber(redis.call('HGET', marks, field) or '-1')
  local n = tonumber(ARGV[i + 2])
  i = i + 3
  for j = 0, n - 1 do
    if tonumber(ARGV[i + j]) > mark then inc[valid] = (inc[valid] or 0) + 1 end
  end
  i = i + n
  n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    local fresh, k = tonumber(ARGV[i]) > mark, tonumber(ARGV[i + 1])
    i = i + 2
    if fresh then
      for j = 0, k - 1 do
      local f, d = ARGV[i + j], 1
      if string.sub(f, 1, 1) == '-' then f, d = string.sub(f, 2), -1 end
      inc[f] = (inc[f] or 0) + d
    end
    end
    i = i + k
  end
  if top > mark then redis.call('HSET', marks, field, top) end
end
local counted = 0
for field, v in pairs(inc) do
  redis.call('HINCRBY', counters, field, v)
  counted = counted + v
end
return counted
"""


HANDLER_ERROR = "(record)|invalid|handler_error"  # a record a handler raised on


class RejectCounter:
    """Counts one topic's rejected records once each (see the module)."""

    def __init__(self, client: redis.Redis, names: Names, topic: str, count_valid: bool):
        self.keys = [names.monitor("rejects"), names.monitor("rejects:marks")]
        self.topic = topic
        self.records = records_key(topic)
        # labels and metrics: the records that passed are the rates' denominators (a
        # transaction's are the scored rows the monitor sees, so the scorer counts none)
        self.valid = valid_key(topic) if count_valid else ""
        self._script = client.register_script(_COUNT)

    def count(self, records: Sequence[Record], rejected: Iterable[tuple[Record, set[str]]]) -> int:
        """Count ``rejected`` (records of the batch ``records``, each with its
        :func:`core.rejects.reject_keys`) and, when counting them, the batch's other records;
        nothing already counted. Returns the increments made (for tests and logs)."""
        bad: dict[tuple[str, int], list[tuple[int, set[str]]]] = {}
        for rec, keys in rejected:
            bad.setdefault((rec.topic, rec.partition), []).append((rec.offset, keys))
        if not bad and not self.valid:
            return 0
        top: dict[tuple[str, int], int] = {}  # per partition, the batch's last offset
        ok: dict[tuple[str, int], list[int]] = {}  # ... and the offsets that passed
        for rec in records:
            part = (rec.topic, rec.partition)
            top[part] = max(top.get(part, -1), rec.offset)
            ok.setdefault(part, [])
        if self.valid:
            rejected_at = {(part, off) for part, items in bad.items() for off, _ in items}
            for rec in records:
                if ((rec.topic, rec.partition), rec.offset) not in rejected_at:
                    ok[(rec.topic, rec.partition)].append(rec.offset)
        args: list[str | int] = [self.valid, len(top)]
        for part, last in top.items():
            mine = bad.get(part, [])
            args += [f"{part[0]}|{part[1]}", last, len(ok[part]), *ok[part], len(mine)]
            for off, keys in mine:
                args += [off, len(keys) + 1, self.records, *sorted(keys)]
        return int(self._script(keys=self.keys, args=args))

    def count_failed(self, records: Sequence[Record], failed: Sequence[Record]) -> int:
        """Count the records of the handled batch ``records`` that a handler raised on
        (``failed``, each dead-lettered alone) as rejected, each once (see the module).
        Returns the increments made (a record that passed validation: 1)."""
        if not failed:
            return 0
        top: dict[tuple[str, int], int] = {}
        for rec in records:
            part = (rec.topic, rec.partition)
            top[part] = max(top.get(part, -1), rec.offset)
        bad: dict[tuple[str, int], list[int]] = {}
        for rec in failed:
            bad.setdefault((rec.topic, rec.partition), []).append(rec.offset)
        fields = [self.records, prefix(self.topic) + HANDLER_ERROR]
        if self.valid:
            fields.append("-" + self.valid)  # it passed validation (counted then)
        args: list[str | int] = ["", len(bad)]
        for part, offsets in bad.items():
            args += [f"{part[0]}|{part[1]}|failed", max(top.get(part, -1), *offsets), 0]
            args.append(len(offsets))
            for off in offsets:
                args += [off, len(fields), *fields]
        return int(self._script(keys=self.keys, args=args))
