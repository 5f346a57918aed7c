"""Outcomes: what became of every profile, counted with Sentry's codes.

The pipeline reports through `OutcomeTracker.track_outcome` into an `OutcomeSink` (the
index, in practice), which also marks the projects as having profiles in the same write
(what Sentry's onboarding waits for).  The codes themselves live in `profd.formats.outcome`.

With an output producer (a Kafka bus), outcomes also go to Sentry's ``outcomes`` topic,
together with the task's other output messages (profd.pipeline.sentry_topics), and *before*
they are recorded: a worker killed in between has its message redelivered, and the records
not yet there are published again, so nothing is lost.  Records whose idempotency keys are
recorded already went out with their messages the first time and are not published again,
so a redelivery after the record publishes nothing twice.  Only a kill between the broker's
acknowledgement and the record (a window of one index write) publishes a message twice;
its ``idempotency_key`` header lets a consumer drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from profd.formats.outcome import UI_PROFILE_PLATFORMS, DataCategory, Outcome, OutcomeRecord
from profd.metrics import METRICS
from profd.pipeline.sentry_topics import OutputMessage, OutputProducer, outcome_messages

__all__ = [
    "UI_PROFILE_PLATFORMS",
    "DataCategory",
    "Outcome",
    "OutcomeRecord",
    "OutcomeSink",
    "OutcomeTracker",
]


class OutcomeSink(Protocol):
    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        """Record the outcomes, at once, and set their projects' ``has_profiles`` flag."""
        ...

    def recorded_outcome_keys(self, keys: Sequence[str]) -> set[str]: ...


class OutcomeTracker:
    """`track_outcome` bound to a sink: the one way the pipeline reports outcomes."""

    def __init__(
        self, sink: OutcomeSink, output: OutputProducer | None = None, topic: str = "outcomes"
    ) -> None:
        self._sink = sink
        self._output = output
        self._topic = topic

    def track_outcome(
        self,
        org_id: int,
        project_id: int,
        key_id: int | None,
        outcome: Outcome,
        reason: str | None = None,
        timestamp: datetime | None = None,
        event_id: str | None = None,
        category: DataCategory | None = None,
        quantity: int | None = None,
    ) -> OutcomeRecord:
        record = OutcomeRecord(
            timestamp=timestamp or datetime.now(UTC),
            org_id=org_id,
            project_id=project_id,
            key_id=key_id,
            outcome=outcome,
            reason=reason,
            event_id=event_id,
            category=category if category is not None else DataCategory.DEFAULT,
            quantity=1 if quantity is None else quantity,
        )
        self.track_outcomes([record])
        return record

    @property
    def publishes(self) -> bool:
        """Whether outcomes (and the messages given with them) go to an output producer."""
        return self._output is not None

    def track_outcomes(
        self, records: Sequence[OutcomeRecord], messages: Sequence[OutputMessage] = ()
    ) -> None:
        """Outcomes written together, in one transaction (a task's, an envelope's rejections).
        `messages` are the task's other output messages, published with them unless the
        records are there already (see the module's docstring)."""
        if not records:
            return
        if self._output is not None:
            keys = [record.key for record in records if record.key is not None]
            recorded = self._sink.recorded_outcome_keys(keys) if keys else set()
            fresh = [record for record in records if record.key is None or record.key not in recorded]
            if fresh:
                # A task's outcomes are recorded in one transaction: all of them or none.
                also = messages if len(fresh) == len(records) else ()
                self._output.publish([*also, *outcome_messages(fresh, self._topic)])
        self._sink.record_outcomes(records)
        for record in records:
            METRICS.outcomes.labels(
                record.outcome.name.lower(), record.category.api_name, record.reason or ""
            ).inc(record.quantity)
