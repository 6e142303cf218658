"""Where a consumer group reading a topic for the first time starts: where another group,
the one that read it before, left off.

Moving a reader from one consumer group to another (the monitor's ``scores`` and ``labels``
left the faust worker's group for its own batch loop, issue 15) would otherwise start it at
``auto.offset.reset``: the whole retained topic read again (earliest: every score counted twice,
days of backlog) or the records in between skipped (latest). So a partition on which the new
group has committed nothing starts at the old group's committed offset, if it has one.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException, TopicPartition

from riverwatch.core.kafka import KafkaConfig, consumer

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0


def inherited(
    c: Consumer, kafka: KafkaConfig, old_group: str, parts: list[TopicPartition]
) -> list[TopicPartition]:
    """``parts`` (being assigned to ``c``) with each partition ``c``'s group never committed
    starting at ``old_group``'s committed offset; the others as they are (their own commit,
    else ``auto.offset.reset``). A broker that does not answer: ``parts`` unchanged."""
    try:
        ours = c.committed([TopicPartition(tp.topic, tp.partition) for tp in parts], TIMEOUT_S)
        fresh = [TopicPartition(tp.topic, tp.partition) for tp in ours if tp.offset < 0]
        if not fresh:
            return parts
        old = consumer(kafka, old_group)  # never subscribes: it does not join that group
        try:
            theirs = old.committed(fresh, TIMEOUT_S)
        finally:
            old.close()
    except KafkaException as exc:
        log.warning(
            "offsets of %s not read (%s): the new group starts as configured", old_group, exc
        )
        return parts
    start = {(tp.topic, tp.partition): tp.offset for tp in theirs if tp.offset >= 0}
    for tp in parts:
        if (tp.topic, tp.partition) in start:
            tp.offset = start[(tp.topic, tp.partition)]
            log.info(
                "%s[%d] starts at %d, where %s left off",
                tp.topic,
                tp.partition,
                tp.offset,
                old_group,
            )
    return parts
