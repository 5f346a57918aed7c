"""The envelope endpoint's logic, Relay's role: who may send, what is kept, what is counted.

A request is authenticated by its DSN public key, decompressed, parsed; each profile item
is expanded into a bus message and appended to the queue before the client is answered.
Items that fail validation are counted as INVALID outcomes with Relay's reason; the
envelope is still answered 200, as Relay does.  A full queue answers 429 with Retry-After
instead of growing without bound.  Nothing here knows HTTP: `IngestError` carries the
status the web layer answers with.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from profd.formats import FormatError, encode_message
from profd.formats.message import TOPIC, Headers, message_headers
from profd.formats.outcome import DataCategory, Outcome
from profd.ingest.envelope import decompress_body, parse_envelope
from profd.ingest.submit import OutcomeTracking, ProfileItem, envelope_items, to_message, track_rejection

log = logging.getLogger(__name__)


class IngestError(Exception):
    """A request refused as a whole; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


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
    def produce(self, topic: str, value: bytes, headers: Headers) -> int: ...

    def pending(self, topic: str, group: str) -> int: ...


def public_key_of(auth_header: str | None, query_key: str | None) -> str | None:
    """The DSN key from ``X-Sentry-Auth: Sentry sentry_key=...`` or the ``sentry_key`` query."""
    if auth_header:
        _, _, fields = auth_header.partition(" ")
        for part in (fields if auth_header.lower().startswith("sentry ") else auth_header).split(","):
            name, _, value = part.strip().partition("=")
            if name == "sentry_key" and value:
                return unquote(value)
    return query_key or None


@dataclass
class EnvelopeEndpoint:
    directory: Directory
    queue: Producer
    outcomes: OutcomeTracking
    consumer_group: str
    max_size: int
    max_queue_depth: int
    retention_days: int | None = None

    def accept(
        self, project_id: int, public_key: str | None, body: bytes, content_encoding: str | None
    ) -> str | None:
        """Queue the envelope's profiles; returns the envelope's event id."""
        key, project = self._authenticate(project_id, public_key)
        if self.queue.pending(TOPIC, self.consumer_group) >= self.max_queue_depth:
            raise IngestError(429, "the processing queue is full, retry later", retry_after=5)
        try:
            data = decompress_body(body, content_encoding, self.max_size)
        except FormatError as e:
            if e.reason == "too_large":
                self.outcomes.track_outcome(
                    project.organization_id,
                    project.id,
                    key.id,
                    Outcome.INVALID,
                    "too_large",
                    category=DataCategory.DEFAULT,
                )
                raise IngestError(413, e.message) from None
            raise IngestError(400, e.message) from None
        try:
            envelope = parse_envelope(data)
        except FormatError as e:
            raise IngestError(400, f"invalid envelope: {e}") from None
        for item in envelope_items(envelope):
            self._queue_item(item, project, key)
        event_id = envelope.headers.get("event_id")
        return str(event_id) if event_id else None

    def _authenticate(self, project_id: int, public_key: str | None) -> tuple[KeyLike, ProjectLike]:
        if not public_key:
            raise IngestError(401, "missing authorization information")
        key = self.directory.key_by_public_key(public_key)
        if key is None or not key.active:
            raise IngestError(401, "invalid api key")
        project = self.directory.project(project_id)
        if project is None:
            raise IngestError(404, f"project {project_id} does not exist")
        if key.project_id != project.id:
            raise IngestError(403, "this key does not belong to the project")
        return key, project

    def _queue_item(self, item: ProfileItem, project: ProjectLike, key: KeyLike) -> None:
        try:
            if item.item_type == "profile" and item.sampled and item.transaction is None:
                raise FormatError(
                    "a sampled profile must travel with its transaction", "$", "missing_transaction"
                )
            message = to_message(
                item,
                organization_id=project.organization_id,
                project_id=project.id,
                key_id=key.id,
                received=int(time.time()),
                retention_days=self.retention_days,
                max_size=self.max_size,
            )
        except FormatError as e:
            track_rejection(
                self.outcomes,
                item,
                e,
                organization_id=project.organization_id,
                project_id=project.id,
                key_id=key.id,
            )
            return
        self.queue.produce(TOPIC, encode_message(message), message_headers(message, item.sampled))
