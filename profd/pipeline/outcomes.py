"""Outcomes: what became of every profile, counted with Sentry's codes.

The pipeline reports through `OutcomeTracker.track_outcome` into an `OutcomeSink` (the
index, in practice), which also marks the projects as having profiles in the same write
(what Sentry's onboarding waits for).  The codes themselves live in `profd.formats.outcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from profd.formats.outcome import UI_PROFILE_PLATFORMS, DataCategory, Outcome, OutcomeRecord
from profd.metrics import METRICS

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


class OutcomeTracker:
    """`track_outcome` bound to a sink: the one way the pipeline reports outcomes."""

    def __init__(self, sink: OutcomeSink) -> None:
        self._sink = sink

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

    def track_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        """Outcomes written together, in one transaction (a task's, an envelope's rejections)."""
        if not records:
            return
        self._sink.record_outcomes(records)
        for record in records:
            METRICS.outcomes.labels(
                record.outcome.name.lower(), record.category.api_name, record.reason or ""
            ).inc(record.quantity)
