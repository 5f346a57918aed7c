"""Outcomes: what became of every profile, counted with Sentry's codes.

The pipeline reports through `OutcomeTracker.track_outcome` into an `OutcomeSink` (the
index, in practice); the first outcome of a project marks it as having profiles, which is
what Sentry's onboarding waits for.  The codes themselves live in `profd.formats.outcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from profd.formats.outcome import UI_PROFILE_PLATFORMS, DataCategory, Outcome, OutcomeRecord

__all__ = [
    "UI_PROFILE_PLATFORMS",
    "DataCategory",
    "Outcome",
    "OutcomeRecord",
    "OutcomeSink",
    "OutcomeTracker",
]


class OutcomeSink(Protocol):
    def record_outcome(self, record: OutcomeRecord) -> None: ...

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> None: ...

    def mark_has_profiles(self, project_id: int) -> bool:
        """Set the project's ``has_profiles`` flag; True only on the first transition."""
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
        self._sink.mark_has_profiles(project_id)
        self._sink.record_outcome(record)
        return record

    def track_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        """Outcomes built elsewhere (ingest's rejections), written together."""
        if not records:
            return
        for project_id in {record.project_id for record in records}:
            self._sink.mark_has_profiles(project_id)
        self._sink.record_outcomes(records)
