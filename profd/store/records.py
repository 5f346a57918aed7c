"""What the store's protocols take and return (profd.store.protocols): plain msgspec structs,
the same whichever backend answers.

Rows of a profile (`ProfileMetadata`, `FunctionMetrics`, `FlameNode`) are computed by the
pipeline's analysis stage and defined in profd.formats.rows; this module holds the
directory's rows, the selections the read side asks about, and the aggregates it answers with.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from profd.formats.histogram import Histogram
from profd.formats.outcome import DataCategory, Outcome

# Rollups are hourly and daily: a sampled profile is summed into the buckets of the hour and
# of the (UTC) day it started in.
HOUR = 3600
DAY = 86400
Span = Literal["hour", "day"]
# Example profiles a function rollup keeps per bucket, as Sentry's groupUniqArray(5).
EXAMPLES = 5

# What profile listings sort by: start time or duration.
Sort = Literal["start", "duration"]


class Organization(msgspec.Struct, frozen=True):
    id: int
    slug: str
    name: str
    retention_days: int | None


class Project(msgspec.Struct, frozen=True):
    id: int
    organization_id: int
    slug: str
    name: str
    has_profiles: bool


class ProjectKey(msgspec.Struct, frozen=True):
    id: int
    project_id: int
    public_key: str
    active: bool


class Token(msgspec.Struct, frozen=True):
    """A bearer token as listed: never the secret, which only its creator ever sees."""

    id: int
    organization_id: int
    name: str
    created: float
    revoked: bool
    scopes: tuple[str, ...]
    parent_id: int | None = None


class OutcomeCount(msgspec.Struct, frozen=True):
    outcome: Outcome
    reason: str | None
    category: DataCategory
    times: int
    quantity: int


class OutcomeBucket(msgspec.Struct, frozen=True):
    """Outcomes of one time bucket (unix seconds, a multiple of the interval asked for)."""

    bucket: int
    outcome: Outcome
    reason: str | None
    category: DataCategory
    times: int
    quantity: int


class ProfileFilter(msgspec.Struct, kw_only=True):
    """A selection of an organization's sampled profiles: every field given must match."""

    project_ids: list[int] | None = None
    transaction: str | None = None
    release: str | None = None
    environment: str | None = None
    platform: str | None = None
    device_class: str | None = None
    start: float | None = None  # unix seconds, inclusive
    end: float | None = None  # unix seconds, exclusive

    def dimensions(self) -> list[tuple[str, str | None]]:
        """The dimension filters by the name of the profile field they match."""
        return [
            ("transaction_name", self.transaction),
            ("release", self.release),
            ("environment", self.environment),
            ("platform", self.platform),
            ("device_class", self.device_class),
        ]


# The read side's rows come by the ten thousand and hold no cycles: gc=False keeps the
# collector from walking them.


class ProfileFunction(msgspec.Struct, frozen=True, gc=False):
    """One function's occurrences in one profile, as the functions table sums them."""

    project_id: int
    profile_id: str
    fingerprint: int
    function: str
    package: str
    in_app: bool
    self_times_ns: list[int]
    max_duration_ns: int


class FunctionRollup(msgspec.Struct, frozen=True, gc=False):
    """One function in one hourly (or daily) bucket of one project: its occurrences summed."""

    project_id: int
    fingerprint: int
    function: str
    package: str
    in_app: bool
    occurrences: int
    sum_self_time_ns: int
    worst_ns: int  # the slowest occurrence
    worst_profile_id: str
    examples: list[str]  # up to EXAMPLES profile ids
    self_times: Histogram  # profd.formats.histogram of the self times
