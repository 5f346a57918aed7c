"""The envelope endpoint's logic, Relay's role: who may send, what is kept, what is counted.

A request is authenticated by its DSN public key before its body is read (or, in the
tunnel case, as soon as the envelope's header line has arrived), decoded within
`max_envelope_size`, parsed; each profile item is expanded into a bus message and appended
to the queue before the client is answered.  Items that fail validation are counted as
INVALID outcomes with Relay's reason; the envelope is still answered 200, as Relay does.
A full queue or a key over its rate limit answers 429 with ``Retry-After`` and
``X-Sentry-Rate-Limits``, and counts the envelope's profile items as RATE_LIMITED, instead
of growing without bound.  Nothing here knows HTTP: `profd.errors.Refused` carries the status the
web layer answers with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import unquote, urlsplit

from profd.errors import BackendUnavailable, Refused
from profd.formats import FormatError, encode_message
from profd.formats.message import TOPIC, Headers, message_headers
from profd.formats.outcome import DataCategory, Outcome, OutcomeRecord
from profd.ingest.envelope import envelope_header, parse_envelope
from profd.ingest.rate_limit import KeyRateLimit
from profd.ingest.submit import OutcomeTracking, ProfileItem, envelope_items, item_outcomes, submit
from profd.metrics import METRICS

log = logging.getLogger(__name__)

# What a 429 tells SDKs to hold back: the profile categories only, for this project.
_PROFILE_CATEGORIES = "profile;profile_chunk;profile_chunk_ui"
# The envelope header line that names the DSN (tunnels) is small; past this it is not one.
MAX_HEADER_LINE = 64 * 1024


def throttled(detail: str, retry_after: int, reason: str) -> Refused:
    """A 429 as Relay answers it: when to retry, and which categories are limited."""
    limits = f"{retry_after}:{_PROFILE_CATEGORIES}:project:{reason}"
    return Refused(429, detail, {"Retry-After": str(retry_after), "X-Sentry-Rate-Limits": limits})


class KeyLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def project_id(self) -> int: ...

    @property
    def active(self) -> bool: ...


class ProjectLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def organization_id(self) -> int: ...


class Directory(Protocol):
    def key_by_public_key(self, public_key: str) -> KeyLike | None: ...

    def project(self, project_id: int) -> ProjectLike | None: ...


class Producer(Protocol):
    def produce_many(self, topic: str, messages: Sequence[tuple[bytes, Headers]]) -> list[int]: ...

    def pending(self, topic: str, group: str) -> int: ...


def public_key_of(*auth_headers: str | None, query_key: str | None = None) -> str | None:
    """The DSN key from ``X-Sentry-Auth`` or ``Authorization`` (``Sentry sentry_key=...``), or
    the ``sentry_key`` query parameter."""
    for auth_header in auth_headers:
        if not auth_header:
            continue
        scheme, _, fields = auth_header.partition(" ")
        for part in (fields if scheme.lower() == "sentry" else auth_header).split(","):
            name, _, value = part.strip().partition("=")
            if name == "sentry_key" and value:
                return unquote(value)
    return query_key or None


def dsn_public_key(header_line: bytes) -> str | None:
    """The key of the ``dsn`` in an envelope's header line (an SDK behind a tunnel)."""
    try:
        dsn = envelope_header(header_line).get("dsn")
    except FormatError:
        return None
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


@dataclass(frozen=True)
class Sender:
    """Who sent an envelope: an active key of the project it was sent to."""

    key: KeyLike
    project: ProjectLike


@dataclass
class EnvelopeEndpoint:
    directory: Directory
    queue: Producer
    outcomes: OutcomeTracking
    consumer_group: str
    max_size: int
    max_queue_depth: int
    max_envelope_size: int
    max_envelope_items: int
    rate_limit: KeyRateLimit | None = None
    retention_days: int | None = None

    def authenticate(self, project_id: int, public_key: str | None) -> Sender:
        if not public_key:
            raise Refused(401, "missing authorization information")
        key = self.directory.key_by_public_key(public_key)
        if key is None or not key.active:
            raise Refused(401, "invalid api key")
        project = self.directory.project(project_id)
        if project is None:
            raise Refused(404, f"project {project_id} does not exist")
        if key.project_id != project.id:
            raise Refused(403, "this key does not belong to the project")
        return Sender(key, project)

    def too_large(self, sender: Sender | None, detail: str) -> Refused:
        """A body over the limits: counted against the sender when it is known, then 413."""
        if sender is not None:
            self.outcomes.track_outcomes([self._outcome(sender, Outcome.INVALID, "too_large")])
        return Refused(413, detail)

    def accept(self, sender: Sender, data: bytes, request_id: str | None = None) -> str | None:
        """Queue the decoded envelope's profiles; returns the envelope's event id."""
        try:
            envelope = parse_envelope(data, self.max_envelope_items)
        except FormatError as e:
            if e.reason == "too_large":
                raise self.too_large(sender, e.message) from None
            raise Refused(400, f"invalid envelope: {e}") from None
        items = envelope_items(envelope)
        for item in items:
            METRICS.profile_items.labels(item.item_type).inc()
        self._admit(sender, items)
        submitted = submit(
            items,
            organization_id=sender.project.organization_id,
            project_id=sender.project.id,
            key_id=sender.key.id,
            received=int(time.time()),
            retention_days=self.retention_days,
            max_size=self.max_size,
        )
        messages = [(s.message, s.item.sampled) for s in submitted if s.message is not None]
        rejected = [outcome for s in submitted for outcome in s.outcomes]
        # All of an envelope's profiles or none: a client told 503 sends it again whole.
        # The request id travels with each message, so the worker logs under it too.
        trace = [("request_id", request_id.encode())] if request_id else []
        self.queue.produce_many(
            TOPIC, [(encode_message(m), message_headers(m, sampled) + trace) for m, sampled in messages]
        )
        try:
            self.outcomes.track_outcomes(rejected)
        except BackendUnavailable as e:
            # The profiles are queued; a 503 now would make the client send them twice.
            log.error("outcomes of %d rejected items not recorded: %s", len(rejected), e)
        event_id = envelope.headers.get("event_id")
        return str(event_id)[:64] if event_id else None

    def _admit(self, sender: Sender, items: list[ProfileItem]) -> None:
        """The key's rate limit, then the queue's room, for the items this envelope adds."""
        if not items:
            return
        if self.rate_limit is not None:
            retry_after = self.rate_limit.admit(str(sender.key.id), len(items))
            if retry_after is not None:
                self._throttle(sender, items, "key_rate_limit")
                raise throttled("this key sends more than its rate limit", retry_after, "key_rate_limit")
        if self.queue.pending(TOPIC, self.consumer_group) + len(items) > self.max_queue_depth:
            self._throttle(sender, items, "queue_full")
            raise throttled("the processing queue is full, retry later", 5, "queue_full")

    def _throttle(self, sender: Sender, items: list[ProfileItem], reason: str) -> None:
        records = []
        for item in items:
            records += self._item_outcomes(item, sender, Outcome.RATE_LIMITED, reason)
        self.outcomes.track_outcomes(records)

    def _item_outcomes(
        self, item: ProfileItem, sender: Sender, outcome: Outcome, reason: str
    ) -> list[OutcomeRecord]:
        return item_outcomes(
            item,
            outcome,
            reason,
            organization_id=sender.project.organization_id,
            project_id=sender.project.id,
            key_id=sender.key.id,
        )

    def _outcome(self, sender: Sender, outcome: Outcome, reason: str) -> OutcomeRecord:
        return OutcomeRecord(
            timestamp=datetime.now(UTC),
            org_id=sender.project.organization_id,
            project_id=sender.project.id,
            key_id=sender.key.id,
            outcome=outcome,
            reason=reason,
            event_id=None,
            category=DataCategory.DEFAULT,
            quantity=1,
        )
