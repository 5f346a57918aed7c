"""Outcomes as Sentry counts them: the ``outcomes`` topic message and its codes.

`Outcome` and `DataCategory` carry Sentry's (Relay's) numeric values, so an outcome row in
profd means what the same row means in Sentry.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

import msgspec


class Outcome(IntEnum):
    ACCEPTED = 0
    FILTERED = 1
    RATE_LIMITED = 2
    INVALID = 3
    ABUSE = 4
    CLIENT_DISCARD = 5
    CARDINALITY_LIMITED = 6


class DataCategory(IntEnum):
    DEFAULT = 0
    ERROR = 1
    TRANSACTION = 2
    SECURITY = 3
    ATTACHMENT = 4
    SESSION = 5
    PROFILE = 6
    REPLAY = 7
    TRANSACTION_PROCESSED = 8
    TRANSACTION_INDEXED = 9
    MONITOR = 10
    PROFILE_INDEXED = 11
    SPAN = 12
    MONITOR_SEAT = 13
    USER_REPORT_V2 = 14
    METRIC_BUCKET = 15
    SPAN_INDEXED = 16
    PROFILE_DURATION = 17
    PROFILE_CHUNK = 18
    METRIC_SECOND = 19
    PROFILE_DURATION_UI = 25
    PROFILE_CHUNK_UI = 26
    PROFILE_BACKEND = 35
    PROFILE_UI = 36
    UNKNOWN = -1

    @property
    def api_name(self) -> str:
        return self.name.lower()


# Frontend and mobile platforms are billed as "UI" profiling, everything else as backend.
UI_PROFILE_PLATFORMS = frozenset({"cocoa", "android", "javascript"})


class OutcomeRecord(msgspec.Struct, frozen=True):
    """One outcome, in the shape of Sentry's ``outcomes`` topic message."""

    timestamp: datetime
    org_id: int
    project_id: int
    key_id: int | None
    outcome: Outcome
    reason: str | None
    event_id: str | None
    category: DataCategory
    quantity: int
    # An idempotency key: an outcome whose key is already recorded adds nothing, so a
    # message handled twice counts once.  None: always recorded.
    key: str | None = None


def chunk_category(platform: str | None) -> DataCategory:
    return DataCategory.PROFILE_CHUNK_UI if platform in UI_PROFILE_PLATFORMS else DataCategory.PROFILE_CHUNK


def rejected_categories(*, chunk: bool, platform: str | None, sampled: bool) -> list[DataCategory]:
    """Categories a rejected profile is counted in, wherever it was rejected."""
    if chunk:
        return [chunk_category(platform)]
    if sampled:
        return [DataCategory.PROFILE, DataCategory.PROFILE_INDEXED]
    return [DataCategory.PROFILE]
