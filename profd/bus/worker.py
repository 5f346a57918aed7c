"""The pipeline worker: messages from the bus through process_profile_task, then committed.

Arroyo's strategies, as in Sentry's profiles consumer: run the task on each message, then
commit its offset.  A message is committed only once the task is done with it, so a crash
before that means it is processed again, which the idempotent store makes harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload
from arroyo.commit import IMMEDIATE
from arroyo.processing import StreamProcessor
from arroyo.processing.strategies import CommitOffsets, ProcessingStrategy, ProcessingStrategyFactory, RunTask
from arroyo.types import Commit, Message, Partition, Topic

from profd.formats.message import TOPIC, sampled_from_headers
from profd.pipeline.context import TaskContext
from profd.pipeline.task import process_profile_task

log = logging.getLogger(__name__)

CONSUMER_GROUP = "profd-profiles"


class ProcessProfiles(ProcessingStrategyFactory[KafkaPayload]):
    def __init__(self, context: TaskContext) -> None:
        self.context = context

    def process(self, message: Message[KafkaPayload]) -> None:
        payload = message.payload
        process_profile_task(payload.value, sampled_from_headers(payload.headers), context=self.context)

    def create_with_partitions(
        self, commit: Commit, partitions: Mapping[Partition, int]
    ) -> ProcessingStrategy[KafkaPayload]:
        return RunTask(self.process, CommitOffsets(commit))


def stream_processor(consumer: Consumer[KafkaPayload], context: TaskContext) -> StreamProcessor[KafkaPayload]:
    """A processor that commits after every message: redelivery is bounded to one message."""
    return StreamProcessor(consumer, Topic(TOPIC), ProcessProfiles(context), commit_policy=IMMEDIATE)
