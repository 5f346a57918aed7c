"""What the task needs from the rest of profd.

The task looks up organizations and projects (the store's `Directory`), calls a
symbolicator, stores the processed profile and reports outcomes; `profd.services` builds
the real backends behind these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from profd.formats.rows import ProcessedProfile
from profd.pipeline.outcomes import OutcomeTracker
from profd.pipeline.sentry_topics import TopicNames
from profd.store.protocols import Directory
from profd.symbols.contract import Symbolicator


class ProfileSink(Protocol):
    def push(self, processed: ProcessedProfile) -> object: ...


@dataclass(frozen=True)
class TaskContext:
    directory: Directory
    store: ProfileSink
    symbolicator: Symbolicator
    outcomes: OutcomeTracker
    # Sentry's option profiling.profile_metrics.unsampled_profiles.enabled.
    unsampled_profiles_enabled: bool = False
    default_retention_days: int = 90
    max_profile_size: int = 50 * 1024 * 1024
    # Where the messages Sentry's storage reads go, when `outcomes` has an output producer.
    topics: TopicNames = field(default_factory=TopicNames)
