"""process_profile_task: one bus message in, one stored profile and its outcomes out.

Reads like the mission: unsampled check -> unpack -> organization/project lookup ->
event_id -> symbolicate -> deobfuscate -> React Native JS pass -> normalize -> frame
platforms -> analyse (what vroom computes on insertion) -> push to store -> outcomes.  Each stage is one short function; a stage that
fails emits an INVALID outcome with its reason and stops the task.

One exception escapes: `BackendUnavailable`, a store or index that did not answer.  That
says nothing about the profile, so it is never counted; the worker retries the message.
A task's outcomes are written together at its end, each with an idempotency key derived
from the message's identity on the bus, so a message handled twice counts once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from profd.errors import BackendUnavailable
from profd.formats import FormatError, Kind, decode_json, decode_message, profile_event_id, validate
from profd.formats.message import ProfileMessage
from profd.formats.outcome import chunk_category, rejected_categories
from profd.formats.rows import ProcessedProfile
from profd.gc_pause import gc_paused
from profd.metrics import METRICS
from profd.pipeline import analyse, deobfuscate, duration, normalize, react_native, symbolicate
from profd.pipeline.context import TaskContext
from profd.pipeline.outcomes import DataCategory, Outcome, OutcomeRecord
from profd.pipeline.sentry_topics import OutputMessage, profile_messages
from profd.store.records import Organization, Project

log = logging.getLogger(__name__)


class StageFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class TaskRun:
    """The state of one task: what has been learned about the message so far."""

    context: TaskContext
    payload: bytes
    sampled: bool
    message: ProfileMessage | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    kind: Kind | None = None
    organization: Organization | None = None
    project: Project | None = None
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    processed: ProcessedProfile | None = None
    stored: object = None
    # The message's identity on the bus ("topic/partition/offset"), for outcome keys.
    message_id: str | None = None

    @property
    def event_id(self) -> str | None:
        return profile_event_id(self.profile)

    @property
    def is_chunk(self) -> bool:
        if self.kind is not None:
            return self.kind.is_chunk
        return self.profile.get("profiler_id") is not None or (
            self.message is not None and self.message.type == "profile_chunk"
        )

    def track(
        self,
        outcome: Outcome,
        categories: list[DataCategory],
        reason: str | None = None,
        quantity: int = 1,
        event_id: str | None = None,
    ) -> None:
        org_id = self.message.organization_id if self.message else 0
        project_id = self.message.project_id if self.message else 0
        now = datetime.now(UTC)
        for category in categories:
            self.outcomes.append(
                OutcomeRecord(
                    timestamp=now,
                    org_id=org_id,
                    project_id=project_id,
                    key_id=None,
                    outcome=outcome,
                    reason=reason,
                    event_id=event_id,
                    category=category,
                    quantity=quantity,
                    key=self._outcome_key(category, outcome, len(self.outcomes)),
                )
            )

    def _outcome_key(self, category: DataCategory, outcome: Outcome, ordinal: int) -> str | None:
        """The same message counts once: its bus identity and the outcome's place in the task;
        without a bus (``profd process``), the profile's id and what the outcome is."""
        if self.message_id is not None:
            return f"{self.message_id}/{ordinal}"
        if self.event_id is not None:
            return f"{self.event_id}/{int(category)}/{int(outcome)}"
        return None


Stage = Callable[[TaskRun], None]


def stage(reason: str) -> Callable[[Stage], Stage]:
    """Any exception in the stage becomes StageFailed(reason); format errors keep their own."""

    def wrap(fn: Stage) -> Stage:
        latency = METRICS.stage_seconds.labels(fn.__name__)

        def run(task: TaskRun) -> None:
            try:
                with latency.time():
                    fn(task)
            except (StageFailed, BackendUnavailable):
                raise
            except FormatError as e:
                raise StageFailed(e.reason, str(e)) from e
            except Exception as e:
                log.exception("stage %s failed for profile %s", fn.__name__, task.event_id)
                raise StageFailed(reason, f"{type(e).__name__}: {e}") from e

        run.__name__ = fn.__name__
        return run

    return wrap


def process_profile_task(
    payload: bytes, sampled: bool = True, *, context: TaskContext, message_id: str | None = None
) -> TaskRun:
    """Raises BackendUnavailable, and only that: the caller retries the message."""
    task = TaskRun(context=context, payload=payload, sampled=sampled, message_id=message_id)
    if not sampled and not context.unsampled_profiles_enabled:
        return task
    try:
        with gc_paused():
            for step in STAGES:
                step(task)
        track_accepted(task)
    except BackendUnavailable:
        raise
    except StageFailed as failure:
        log.warning("profile %s rejected: %s", task.event_id, failure)
        task.track(Outcome.INVALID, failure_categories(task), failure.reason, event_id=task.event_id)
    except Exception as e:  # the worker must survive even a bug in the orchestration itself
        log.exception("profile %s: unexpected error", task.event_id)
        task.track(
            Outcome.INVALID,
            failure_categories(task),
            f"internal_error: {type(e).__name__}",
            event_id=task.event_id,
        )
    # One write for all of them; if it fails the message is retried, and keys make the
    # retry count once.  The messages Sentry's storage reads go out with them.
    context.outcomes.track_outcomes(task.outcomes, output_messages(task))
    return task


def output_messages(task: TaskRun) -> list[OutputMessage]:
    """What vroom wrote for a stored profile; nothing for one that was not stored."""
    if task.processed is None or task.stored is None or not task.context.outcomes.publishes:
        return []
    identity = task.message_id or task.processed.metadata.profile_id
    return profile_messages(task.processed, task.context.topics, identity)


@stage("payload")
def unpack(task: TaskRun) -> None:
    task.message = message = decode_message(task.payload)
    if len(message.payload) > task.context.max_profile_size:
        raise FormatError(
            f"profile is {len(message.payload)} bytes, above the limit of {task.context.max_profile_size}",
            "$.payload",
            "profiling_exceed_size_limit",
        )
    task.profile = decode_json(message.payload)
    task.kind, _ = validate(task.profile)
    task.profile.update(
        organization_id=message.organization_id,
        project_id=message.project_id,
        received=message.received,
        sampled=task.sampled,
    )


@stage("project_id")
def look_up_project(task: TaskRun) -> None:
    assert task.message is not None
    task.organization = task.context.directory.organization(task.message.organization_id)
    task.project = task.context.directory.project(task.message.project_id)
    if (
        task.organization is None
        or task.project is None
        or task.project.organization_id != task.organization.id
    ):
        raise StageFailed(
            "project_id",
            f"no project {task.message.project_id} in organization {task.message.organization_id}",
        )


@stage("profiling_invalid_json")
def assign_event_id(task: TaskRun) -> None:
    # Legacy Android profiles are identified by profile_id; sample v1 already has event_id.
    if "profile_id" in task.profile:
        task.profile["event_id"] = task.profile["profile_id"]


@stage("profiling_failed_symbolication")
def symbolicate_frames(task: TaskRun) -> None:
    if symbolicate.should_symbolicate(task.profile):
        symbolicate.symbolicate_profile(task.profile, task.context.symbolicator, _project_id(task))


@stage("profiling_failed_deobfuscation")
def deobfuscate_methods(task: TaskRun) -> None:
    if deobfuscate.should_deobfuscate(task.profile):
        deobfuscate.deobfuscate_profile(task.profile, task.context.symbolicator, _project_id(task))


@stage("profiling_failed_symbolication")
def symbolicate_react_native(task: TaskRun) -> None:
    if react_native.needs_js_pass(task.profile):
        js_profile = react_native.wrap_js_profile(task.profile)
        if symbolicate.should_symbolicate(js_profile):
            symbolicate.symbolicate_profile(js_profile, task.context.symbolicator, _project_id(task))
        task.profile["js_profile"] = react_native.unwrap_js_profile(js_profile)


@stage("profiling_failed_normalization")
def normalize_metadata(task: TaskRun) -> None:
    if not task.profile.get("normalized"):
        retention = (task.organization.retention_days if task.organization else None) or (
            task.context.default_retention_days
        )
        normalize.normalize_profile(task.profile, retention)
        task.profile["normalized"] = True


@stage("profiling_failed_normalization")
def set_frames_platform(task: TaskRun) -> None:
    normalize.set_frames_platform(task.profile)


# vroom normalizes and builds call trees as it inserts, so this is where Sentry fails too.
@stage("profiling_failed_vroom_insertion")
def analyse_call_trees(task: TaskRun) -> None:
    assert task.kind is not None
    task.processed = analyse.analyse_profile(task.profile, task.kind, task.context.default_retention_days)


@stage("profiling_failed_vroom_insertion")
def push_to_store(task: TaskRun) -> None:
    assert task.processed is not None
    task.stored = task.context.store.push(task.processed)


STAGES: tuple[Stage, ...] = (
    unpack,
    look_up_project,
    assign_event_id,
    symbolicate_frames,
    deobfuscate_methods,
    symbolicate_react_native,
    normalize_metadata,
    set_frames_platform,
    analyse_call_trees,
    push_to_store,
)


def track_accepted(task: TaskRun) -> None:
    """Accepted profiles count under profile and profile_indexed (chunks under their own
    category); a profile kept only for metrics because its transaction was not sampled is
    accepted as a profile but filtered from the index."""
    if task.sampled:
        track_duration(task)
    if task.is_chunk:
        task.track(Outcome.ACCEPTED, [chunk_category(task.profile.get("platform"))], event_id=task.event_id)
    elif task.sampled:
        task.track(
            Outcome.ACCEPTED, [DataCategory.PROFILE, DataCategory.PROFILE_INDEXED], event_id=task.event_id
        )
    else:
        task.track(Outcome.ACCEPTED, [DataCategory.PROFILE], event_id=task.event_id)
        task.track(Outcome.FILTERED, [DataCategory.PROFILE_INDEXED], "sampled", event_id=task.event_id)


def track_duration(task: TaskRun) -> None:
    try:
        duration_ms = duration.profile_duration_ms(task.profile)
        if duration_ms > 0:
            task.track(Outcome.ACCEPTED, [duration.duration_category(task.profile)], quantity=duration_ms)
    except Exception:
        # Billing's duration must never cost the profile itself.
        log.exception("duration outcome for %s failed", task.event_id)


def failure_categories(task: TaskRun) -> list[DataCategory]:
    return rejected_categories(
        chunk=task.is_chunk, platform=task.profile.get("platform"), sampled=task.sampled
    )


def _project_id(task: TaskRun) -> int:
    assert task.project is not None
    return task.project.id
